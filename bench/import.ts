import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type pg from "pg";
import { importRedis, type ImportSummary } from "../src/importer/index.js";
import {
  fixtureCommands,
  recordConversation,
  type FixtureFormat,
} from "../test/integration/importer/fixtures.js";

/** Result of {@link benchImport}. */
export interface ImportBenchResult {
  threads: number;
  checkpoints: number;
  /** Checkpoints written per second of the whole run (scan + read + convert + write). */
  checkpointsPerSec: number;
  threadsPerSec: number;
  keys: number;
  durationMs: number;
  summary: ImportSummary;
}

/** The source mix: the two official savers' current layouts, the common migration cases. */
const MIX: FixtureFormat[] = ["python", "js"];

/**
 * Loads 10 000 threads (1 000 with `quick`) into Redis - each a two-turn tool-calling chat
 * recorded from a real LangGraph run, alternating the Python >= 0.2 and JS >= 1.0.10 layouts,
 * with their whole history (8 checkpoints, blobs, writes; ~24 keys, ~20 KB per thread) - then
 * imports them with `--history full`, so every checkpoint is moved, and reports checkpoints per
 * second end to end (SCAN, read, convert, write). The Redis keys carry a random token and are
 * deleted afterwards; the rows stay in `schema` (the caller's to drop).
 */
export async function benchImport(opts: {
  pool: pg.Pool;
  schema: string;
  redisUrl: string;
  quick: boolean;
}): Promise<ImportBenchResult> {
  const threads = opts.quick ? 1_000 : 10_000;
  const token = `tlbench${randomBytes(4).toString("hex")}`;
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 2 });
  try {
    const template = await recordConversation(`${token}-template`, ["weather in sf?", "thanks"]);
    let keys = 0;
    for (let i = 0; i < threads; i += 250) {
      const pipe = redis.pipeline();
      for (let j = i; j < Math.min(threads, i + 250); j++) {
        const threadId = `${token}-${String(j).padStart(6, "0")}`;
        const conv = { ...template, threadId };
        for (const c of fixtureCommands(MIX[j % MIX.length]!, conv)) {
          if (c.kind === "set") pipe.set(c.key, c.value);
          else pipe.hset(c.key, c.fields);
          keys++;
        }
      }
      await pipe.exec();
    }
    const summary = await importRedis({
      redis,
      pool: opts.pool,
      schema: opts.schema,
      match: `*${token}*`,
      history: "full",
      batchSize: 100,
      concurrency: 4,
    });
    return {
      threads: summary.threadsImported,
      checkpoints: summary.checkpointsImported,
      checkpointsPerSec: Math.round(summary.checkpointsImported / (summary.durationMs / 1000)),
      threadsPerSec: Math.round(summary.threadsImported / (summary.durationMs / 1000)),
      keys,
      durationMs: summary.durationMs,
      summary,
    };
  } finally {
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `*${token}*`, "COUNT", 5000);
      cursor = next;
      if (batch.length > 0) await redis.unlink(...batch);
    } while (cursor !== "0");
    redis.disconnect();
  }
}

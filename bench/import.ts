import { randomBytes } from "node:crypto";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import type pg from "pg";
import { migrate } from "../src/db/migrator.js";
import { importRedis, type ImportRedisOptions, type ImportSummary } from "../src/importer/index.js";
import { KNOWN_PREFIXES } from "../src/importer/formats/index.js";
import type { MachineCpu } from "./extras-types.js";
import { postgresCpuMs } from "./proc-cpu.js";
import type { ThreadRows } from "../src/importer/serialize.js";
import { ImportWriter, WriteBatch } from "../src/importer/writer.js";
import {
  fixtureCommands,
  recordConversation,
  type FixtureFormat,
} from "../test/integration/importer/fixtures.js";

/** One end-to-end import run (SCAN, read, convert, write). */
export interface ImportRun {
  checkpoints: number;
  checkpointsPerSec: number;
  durationMs: number;
}

/** Result of {@link benchImport}. */
export interface ImportBenchResult {
  threads: number;
  keys: number;
  /**
   * The shipped path: tables with >= copyMinRows rows in a batch go through binary COPY. Run
   * {@link SHIPPED_RUNS} times one after another; `checkpointsPerSec` is the median run's.
   */
  checkpoints: number;
  checkpointsPerSec: number;
  /** Every shipped run, in the order they ran. */
  shippedRuns: ImportRun[];
  threadsPerSec: number;
  durationMs: number;
  /** The same import with COPY disabled (array-parameter INSERTs only), same run. */
  insertOnly: ImportRun;
  /** The same import as a dry run: everything but the writes (the CPU ceiling of the process). */
  dryRun: ImportRun;
  /** copyPath / insertOnly checkpoints per second, end to end. */
  ratio: number;
  /**
   * The write phase alone: the batches the INSERT run wrote, written again into fresh schemas
   * by 4 concurrent writers with INSERTs, with COPY (straight into the tables, as shipped) and
   * with staged COPY, interleaved batch by batch.
   */
  writeOnly: {
    insertPerSec: number;
    copyPerSec: number;
    /** COPY into a temporary table, then INSERT ... SELECT (the fallback when rows exist). */
    stagedCopyPerSec: number;
    ratio: number;
    batches: number;
  };
  /**
   * The read next to the floors of the same data, same run: when the dry run's read of the source
   * ended, as a share of its duration (since decision I21 the read overlaps the conversion and
   * stays a few batches ahead of it, so the two no longer run as stages one after the other),
   * and reading the same keys with SCAN and pipelined MGET only (nothing decoded: the Redis
   * floor), checkpoints and keys per second. The COPY floor of the same rows is
   * `writeOnly.copyPerSec`.
   */
  stages: {
    readEndShare: number;
    rawReadPerSec: number;
    rawReadKeysPerSec: number;
  };
  /**
   * The CPU floor of the same data, same run: `JSON.parse` of every document the import reads
   * (each once, dropped at once) plus `JSON.stringify` and `Buffer.from` of every value of the
   * rows it writes (checkpoint, metadata, blob and write JSON). Work no importer of these rows
   * can skip; everything else an import does (Redis, grouping, conversion, COPY, Postgres) is on
   * top. Checkpoints per second of that work, and its parts in ms.
   */
  cpuFloor: { perSec: number; parseMs: number; outputMs: number; documents: number };
  /**
   * What the shipped run cost the whole machine, per checkpoint: CPU of this process, of every
   * Postgres server process (backends, WAL writer, checkpointer, and backends that exited, through
   * the postmaster's children times; read from /proc, so only for a server on this host,
   * otherwise absent) and of Redis (`INFO cpu`). `boundPerSec` is the most
   * any import doing this work could reach with every core busy and nothing else running:
   * cores x 1 s / total CPU per checkpoint.
   */
  machineCpu?: MachineCpu;
  summary: ImportSummary;
}

/** The source mix: the two official savers' current layouts, the common migration cases. */
const MIX: FixtureFormat[] = ["python", "js"];

/**
 * Timed runs of the shipped path. One run's rate moves by a fifth or more with this VM's host
 * load from one run to the next (decision I20); the median of three is the figure.
 */
const SHIPPED_RUNS = 3;

/** Threads per batch of the write-only comparison: the importer's default batch size. */
const WRITE_BATCH = 500;
const perSec = (n: number, ms: number) => Math.round(n / (ms / 1000));

/**
 * Loads 10 000 threads (500 with `quick`) into Redis - each a two-turn tool-calling chat
 * recorded from a real LangGraph run, alternating the Python >= 0.2 and JS >= 1.0.10 layouts,
 * with their whole history (8 checkpoints, blobs, writes; ~24 keys, ~20 KB per thread) - then
 * imports them with `--history full` in one sitting: as a dry run (no writes: the conversion
 * ceiling), with INSERTs only, and as shipped, three times one after another (COPY for large
 * batches; the median run is the figure, with the CPU the three cost this process, Postgres and
 * Redis per checkpoint). A last, untimed run captures the batches it writes,
 * which are then written again, write path only. The Redis keys carry a random token and
 * are deleted afterwards; the rows stay in schemas `<schema>` and `<schema>_*` (the caller
 * drops `schema`; this function drops the others).
 */
export async function benchImport(opts: {
  pool: pg.Pool;
  schema: string;
  redisUrl: string;
  quick: boolean;
}): Promise<ImportBenchResult> {
  const threads = opts.quick ? 500 : 10_000;
  const token = `tlbench${randomBytes(4).toString("hex")}`;
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 2 });
  const extra = ["insert", "w_insert", "w_copy", "w_staged", "capture", "ship2", "ship3"].map(
    (s) => `${opts.schema}_${s}`,
  );
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
    const run = (schema: string, extraOpts: Partial<ImportRedisOptions>) =>
      importRedis({
        redis,
        pool: opts.pool,
        schema,
        match: `*${token}*`,
        history: "full",
        concurrency: 4,
        ...extraOpts,
      });
    const asRun = (s: ImportSummary): ImportRun => ({
      checkpoints: s.checkpointsImported,
      checkpointsPerSec: perSec(s.checkpointsImported, s.durationMs),
      durationMs: s.durationMs,
    });

    const dry = await run(opts.schema, { dryRun: true });
    const rawRead = await rawReadMs(redis, `*${token}*`);
    const parse = await parseFloor(redis, `*${token}*`);

    const insertOnly = await run(extra[0]!, { copyMinRows: Number.POSITIVE_INFINITY });
    // The shipped runs, one after another, each into an empty schema; the machine's CPU is
    // read across all of them.
    const cpu0 = await machineCpuMs(redis);
    const shippedSummaries: ImportSummary[] = [];
    for (const schema of [opts.schema, extra[5]!, extra[6]!].slice(0, SHIPPED_RUNS))
      shippedSummaries.push(await run(schema, {}));
    const cpu1 = await machineCpuMs(redis);
    const shippedRuns = shippedSummaries.map(asRun);
    const byRate = [...shippedSummaries].sort(
      (a, b) => asRun(a).checkpointsPerSec - asRun(b).checkpointsPerSec,
    );
    const summary = byRate[Math.floor(byRate.length / 2)]!;

    // The batches for the write-only comparison come from a run of their own, after the timed
    // ones: held across a timed run, they made its garbage collector walk them all.
    const batches: ThreadRows[][] = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- restored below, called with its own this
    const add = WriteBatch.prototype.add;
    const held = new WeakMap<WriteBatch, ThreadRows[]>();
    WriteBatch.prototype.add = function (this: WriteBatch, rows: ThreadRows) {
      let list = held.get(this);
      if (!list) held.set(this, (list = []));
      if (list.length === 0) batches.push(list);
      list.push(rows);
      add.call(this, rows);
    };
    try {
      await run(extra[4]!, { copyMinRows: Number.POSITIVE_INFINITY });
    } finally {
      WriteBatch.prototype.add = add;
    }

    // Write path only, the two paths interleaved batch by batch on 4 connections.
    await migrate(opts.pool, { schema: extra[1]! });
    await migrate(opts.pool, { schema: extra[2]! });
    await migrate(opts.pool, { schema: extra[3]! });
    const insertWriter = new ImportWriter(opts.pool, extra[1]!, "bench", {
      copyMinRows: Number.POSITIVE_INFINITY,
    });
    const copyWriter = new ImportWriter(opts.pool, extra[2]!, "bench");
    const stagedWriter = new ImportWriter(opts.pool, extra[3]!, "bench", { directCopy: false });
    const ms = { insert: 0, copy: 0, staged: 0 };
    // Regrouped into batches of WRITE_BATCH threads: the sizes COPY is for.
    const regrouped: ThreadRows[][] = [];
    const all = batches.flat();
    for (let i = 0; i < all.length; i += WRITE_BATCH) regrouped.push(all.slice(i, i + WRITE_BATCH));
    let next = 0;
    let checkpoints = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < regrouped.length) {
          const batch = regrouped[next++]!;
          checkpoints += batch.reduce((n, t) => n + t.checkpoints.length, 0);
          const order = [
            ["insert", insertWriter],
            ["copy", copyWriter],
            ["staged", stagedWriter],
          ] as const;
          // Rotated per batch, so no writer always goes first.
          const k = next % order.length;
          for (const [name, writer] of [...order.slice(k), ...order.slice(0, k)]) {
            const t0 = performance.now();
            await writer.write(batch);
            ms[name] += performance.now() - t0;
          }
        }
      }),
    );
    // Busy time summed over 4 writers: checkpoints per second of one writer's time, times 4.
    const insertPerSec = perSec(checkpoints * 4, ms.insert);
    const copyPerSec = perSec(checkpoints * 4, ms.copy);
    const stagedCopyPerSec = perSec(checkpoints * 4, ms.staged);

    const outputMs = outputFloorMs(batches);
    const shipped = asRun(summary);
    return {
      threads: summary.threadsImported,
      keys,
      checkpoints: shipped.checkpoints,
      checkpointsPerSec: shipped.checkpointsPerSec,
      shippedRuns,
      threadsPerSec: perSec(summary.threadsImported, summary.durationMs),
      durationMs: summary.durationMs,
      insertOnly: asRun(insertOnly),
      dryRun: asRun(dry),
      ratio: shipped.checkpointsPerSec / Math.max(1, asRun(insertOnly).checkpointsPerSec),
      writeOnly: {
        insertPerSec,
        copyPerSec,
        stagedCopyPerSec,
        ratio: copyPerSec / Math.max(1, insertPerSec),
        batches: regrouped.length,
      },
      stages: {
        readEndShare: (dry.readMs ?? dry.durationMs) / Math.max(1, dry.durationMs),
        rawReadPerSec: perSec(dry.checkpointsImported, rawRead.ms),
        rawReadKeysPerSec: perSec(rawRead.keys, rawRead.ms),
      },
      cpuFloor: {
        perSec: perSec(dry.checkpointsImported, parse.ms + outputMs),
        parseMs: Math.round(parse.ms),
        outputMs: Math.round(outputMs),
        documents: parse.documents,
      },
      ...(cpu0.postgres !== undefined && cpu1.postgres !== undefined
        ? {
            machineCpu: cpuPerCheckpoint(
              {
                node: cpu1.node - cpu0.node,
                postgres: cpu1.postgres - cpu0.postgres,
                redis: cpu1.redis - cpu0.redis,
              },
              shippedRuns.reduce((n, r) => n + r.checkpoints, 0),
            ),
          }
        : {}),
      summary,
    };
  } finally {
    for (const s of extra)
      await opts.pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => undefined);
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `*${token}*`, "COUNT", 5000);
      cursor = next;
      if (batch.length > 0) await redis.unlink(...batch);
    } while (cursor !== "0");
    redis.disconnect();
  }
}

/** SCAN + MGET of the keys the importer reads, as text (untimed). */
async function* documentsOf(redis: Redis, match: string): AsyncGenerator<Array<string | null>> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", match, "COUNT", 1000);
    cursor = next;
    for (const k of batch) if (KNOWN_PREFIXES.some((p) => k.startsWith(p))) keys.push(k);
  } while (cursor !== "0");
  for (let i = 0; i < keys.length; i += 2500) yield await redis.mget(keys.slice(i, i + 2500));
}

/**
 * The parse floor: `JSON.parse` of each document the import reads, once, the tree dropped at
 * once (timed per batch of 2 500, the reads themselves untimed).
 */
async function parseFloor(redis: Redis, match: string): Promise<{ ms: number; documents: number }> {
  let ms = 0;
  let documents = 0;
  let sink = 0;
  for await (const texts of documentsOf(redis, match)) {
    const t0 = performance.now();
    for (const text of texts) {
      if (text === null) continue;
      const doc = JSON.parse(text) as unknown;
      if (doc !== null) sink++;
      documents++;
    }
    ms += performance.now() - t0;
  }
  if (sink < 0) throw new Error("unreachable");
  return { ms, documents };
}

/**
 * The output floor: `JSON.stringify` + `Buffer.from` of every JSON value of the rows the import
 * wrote (checkpoint and metadata JSON, blob and write bytes), from the values parsed back out of
 * those rows thread by thread (the parse untimed).
 */
function outputFloorMs(batches: ThreadRows[][]): number {
  let ms = 0;
  let bytes = 0;
  const decoder = new TextDecoder();
  for (const rows of batches.flat()) {
    const values: unknown[] = [];
    for (const c of rows.checkpoints)
      values.push(JSON.parse(c.checkpoint) as unknown, JSON.parse(c.metadata) as unknown);
    for (const b of [...rows.blobs, ...rows.writes])
      if (b.blob !== null && b.type === "json")
        values.push(
          JSON.parse(typeof b.blob === "string" ? b.blob : decoder.decode(b.blob)) as unknown,
        );
    const t0 = performance.now();
    for (const v of values) bytes += Buffer.from(JSON.stringify(v), "utf8").length;
    ms += performance.now() - t0;
  }
  if (bytes < 0) throw new Error("unreachable");
  return ms;
}

/**
 * The Redis floor: SCAN the same keys and read them with MGET, 2 500 keys a command and 4
 * commands in flight (the importer's batch and depth), as bytes, nothing decoded.
 */
async function rawReadMs(redis: Redis, match: string): Promise<{ ms: number; keys: number }> {
  const t0 = performance.now();
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", match, "COUNT", 1000);
    cursor = next;
    for (const k of batch) if (KNOWN_PREFIXES.some((p) => k.startsWith(p))) keys.push(k);
  } while (cursor !== "0");
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < keys.length) {
        const chunk = keys.slice(next, next + 2500);
        next += 2500;
        await redis.mgetBuffer(chunk);
      }
    }),
  );
  return { ms: performance.now() - t0, keys: keys.length };
}

/**
 * CPU milliseconds used so far by this process, by all Postgres server processes of this host
 * (`undefined` without /proc or without a process named postgres) and by Redis.
 */
async function machineCpuMs(
  redis: Redis,
): Promise<{ node: number; postgres: number | undefined; redis: number }> {
  const own = process.cpuUsage();
  const postgres = postgresCpuMs();
  const info = await redis.info("cpu");
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return {
    node: (own.user + own.system) / 1000,
    postgres,
    redis: (field("used_cpu_user") + field("used_cpu_sys")) * 1000,
  };
}

function cpuPerCheckpoint(
  ms: { node: number; postgres: number; redis: number },
  checkpoints: number,
): MachineCpu {
  const us = (v: number) => Math.round((v * 1000) / Math.max(1, checkpoints));
  const nodeUs = us(ms.node);
  const postgresUs = us(ms.postgres);
  const redisUs = us(ms.redis);
  const totalUs = nodeUs + postgresUs + redisUs;
  const cores = os.availableParallelism();
  return {
    nodeUs,
    postgresUs,
    redisUs,
    totalUs,
    cores,
    boundPerSec: Math.round((cores * 1_000_000) / Math.max(1, totalUs)),
  };
}

/**
 * Load test of the chat service: N concurrent clients, each holding one thread and sending turn
 * after turn (a full streamed reply per turn) for a fixed time, against the real service started
 * in this process on the real Postgres (or against `baseUrl`). Reports errors and per-turn latency.
 *
 *   node --import tsx bench/load.ts [--quick] [--base-url http://host:8787]
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { configSchema } from "../src/config/schema.js";
import { startService, type RunningService } from "../src/service/composition-root.js";

/** Options of {@link benchLoad}. */
export interface BenchLoadOptions {
  /** A running service to hit; default: start one in-process on `databaseUrl`. */
  baseUrl?: string;
  /** ~5 s instead of 30 s. */
  quick: boolean;
  /** Concurrent streaming chats. Default 50. */
  concurrency?: number;
  /** Run time in ms; default 30 000 (quick: 5 000). */
  durationMs?: number;
  /** Postgres for the in-process service. Default DATABASE_URL, then the local test database. */
  databaseUrl?: string;
  /** Bearer key to send (for a `baseUrl` with API keys). */
  apiKey?: string;
}

/** What {@link benchLoad} measured. Latencies are milliseconds per turn (request to `[DONE]`). */
export interface BenchLoadResult {
  concurrency: number;
  durationMs: number;
  turns: number;
  errors: number;
  turnsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** First few error descriptions, for diagnosis. */
  errorSamples: string[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)]! * 100) / 100;
}

/** One turn: POST, read the whole stream, check it ended with finish and [DONE], no error. */
async function turn(
  baseUrl: string,
  threadId: string,
  n: number,
  headers: Record<string, string>,
): Promise<void> {
  const res = await fetch(`${baseUrl}/api/chat`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({
      id: threadId,
      message: {
        id: `${threadId}-u${n}`,
        role: "user",
        parts: [{ type: "text", text: `message ${n}` }],
      },
    }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  if (text.includes('"type":"error"'))
    throw new Error(`error chunk: ${text.slice(text.indexOf('"type":"error"'), 200)}`);
  if (!text.includes('"type":"finish"') || !text.trimEnd().endsWith("data: [DONE]")) {
    throw new Error("stream ended without finish/[DONE]");
  }
  if (!text.includes(`turn `)) throw new Error("reply without a turn number");
}

/**
 * Runs `concurrency` streaming chats for `durationMs` and returns per-turn latencies and errors.
 * With no `baseUrl` it starts the service in-process (PostgresCheckpointer behind the fallback,
 * offline model) in a throwaway schema and removes it afterwards.
 */
export async function benchLoad(options: BenchLoadOptions): Promise<BenchLoadResult> {
  const concurrency = options.concurrency ?? 50;
  const durationMs = options.durationMs ?? (options.quick ? 5_000 : 30_000);
  const databaseUrl =
    options.databaseUrl ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const schema = `bench_load_${randomUUID().slice(0, 8)}`;
  let service: RunningService | undefined;
  let baseUrl = options.baseUrl;
  if (!baseUrl) {
    const config = configSchema.parse({
      database: { url: databaseUrl, schema, pool: { size: 20 } },
      server: { port: 0, host: "127.0.0.1", rateLimit: { max: 1_000_000 } },
      cleanup: { enabled: false },
      log: { level: "silent" },
    });
    service = await startService(config, { cleanup: false });
    baseUrl = service.url;
  }
  const headers: Record<string, string> = options.apiKey
    ? { authorization: `Bearer ${options.apiKey}` }
    : {};
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        const threadId = `bench-${randomUUID()}-${worker}`;
        for (let n = 1; performance.now() < deadline; n++) {
          const t0 = performance.now();
          try {
            await turn(baseUrl, threadId, n, headers);
            latencies.push(performance.now() - t0);
          } catch (err) {
            errors++;
            if (errorSamples.length < 5) errorSamples.push((err as Error).message);
          }
        }
      }),
    );
  } finally {
    await service?.shutdown("bench done");
    if (service) {
      const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    }
  }
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    durationMs: Math.round(elapsed),
    turns: latencies.length,
    errors,
    turnsPerSecond: Math.round((latencies.length / elapsed) * 1000 * 10) / 10,
    latencyMs: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
    },
    errorSamples,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--base-url");
  const result = await benchLoad({
    quick: args.includes("--quick"),
    ...(at >= 0 && args[at + 1] ? { baseUrl: args[at + 1] } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
  if (result.errors > 0) process.exitCode = 1;
}

/**
 * Load test of the chat service: N concurrent clients, each holding one thread and sending turn
 * after turn (a full streamed reply per turn) for a fixed time, against the real service started
 * in this process on the real Postgres (or against `baseUrl`). Reports errors and per-turn latency.
 *
 *   node --import tsx bench/load.ts [--quick] [--base-url http://host:8787]
 */
import { randomUUID } from "node:crypto";
import os from "node:os";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { configSchema } from "../src/config/schema.js";
import { startService, type RunningService } from "../src/service/composition-root.js";
import { type Child, forkChild as forkFile, PROFILE_DIR } from "./child.js";
import { postgresCpuMs } from "./proc-cpu.js";

export { PROFILE_DIR };

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
  try {
    return await driveLoad(baseUrl, concurrency, durationMs, headers);
  } finally {
    await service?.shutdown("bench done");
    if (service) await dropSchema(databaseUrl, schema);
  }
}

async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
  await pool.end();
}

/** `concurrency` chats, each on a thread of its own, turn after turn until `durationMs` passed. */
async function driveLoad(
  baseUrl: string,
  concurrency: number,
  durationMs: number,
  headers: Record<string, string> = {},
): Promise<BenchLoadResult> {
  const started = performance.now();
  const raw = await driveLoadRaw(baseUrl, concurrency, durationMs, headers);
  const elapsed = performance.now() - started;
  return summarize(concurrency, elapsed, raw.latencies, raw.errors, raw.samples);
}

function summarize(
  concurrency: number,
  elapsed: number,
  unsorted: number[],
  errors: number,
  errorSamples: string[],
): BenchLoadResult {
  const latencies = [...unsorted].sort((a, b) => a - b);
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

/**
 * A service under test in the side-by-side load benchmark: `floor` is the same service on a
 * FloorSaver (MemorySaver plus the primary-key read and the durable commit no saver can skip).
 */
export type LoadSide = "threadline" | "memory" | "official" | "floor";

/**
 * CPU milliseconds per turn a side cost the whole machine during its rounds: its service process,
 * the load generator and every Postgres server process of this host (absent for a server on
 * another host). On a machine whose cores all three share, `boundTurnsPerSecond` (cores / total)
 * is the most turns per second that side can reach.
 */
export interface LoadMachineCpu {
  service: number;
  driver: number;
  postgres?: number;
  total: number;
  cores: number;
  boundTurnsPerSecond: number;
}

/** The same service on four checkpointers, as {@link benchLoadSideBySide} measured them. */
export interface BenchLoadSideBySideResult {
  threadline: BenchLoadResult;
  memory: BenchLoadResult;
  official: BenchLoadResult;
  floor: BenchLoadResult;
  /** Throughput ratios (turns per second). */
  ratios: {
    "threadline/memory": number;
    "threadline/official": number;
    "threadline/floor": number;
    "floor/memory": number;
  };
  /**
   * CPU time (user + system) each service process spent per turn during the measured rounds,
   * in ms. Less sensitive to other load on the machine than throughput, which is wall-clock.
   */
  cpuMsPerTurn: Record<LoadSide, number>;
  /** What each side's turns cost the machine, service, clients and Postgres together. */
  machineCpuMsPerTurn: Record<LoadSide, LoadMachineCpu>;
}

const CHILD = fileURLToPath(new URL("./load-child.ts", import.meta.url));

const forkChild = (args: string[], profile: boolean): Child => forkFile(CHILD, args, profile);

/**
 * The HTTP load side by side: the service as `threadline serve` runs it (PostgresCheckpointer
 * behind the fallback), the same app (`createApp`, same routes, offline model) on MemorySaver,
 * on the official PostgresSaver and on a FloorSaver (the durable floor, decision P14). Each
 * service and the load generator (the HTTP clients) run in a child process of their own
 * (decision H31), so the side being measured has a process to itself and competes with the
 * clients only for cores, as a deployed service would. Rounds interleave the four (a few seconds
 * each, 50 concurrent streaming chats on new threads), so load on the machine falls on each
 * alike; throughput is summed over the rounds.
 */
export async function benchLoadSideBySide(options: {
  quick: boolean;
  databaseUrl?: string;
  concurrency?: number;
  /** Rounds and their length; default 2 x 1.5 s quick, 5 x 6 s otherwise. */
  rounds?: number;
  roundMs?: number;
  /** Run the service children under `--cpu-prof`, profiles in {@link PROFILE_DIR}. */
  profile?: boolean;
}): Promise<BenchLoadSideBySideResult> {
  const concurrency = options.concurrency ?? 50;
  const databaseUrl =
    options.databaseUrl ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const roundMs = options.roundMs ?? (options.quick ? 1_500 : 6_000);
  const profile = options.profile ?? false;
  const tag = randomUUID().slice(0, 8);
  const sides = ["threadline", "memory", "official", "floor"] as const;
  const schemas: Record<LoadSide, string> = {
    threadline: `bench_load_tl_${tag}`,
    memory: `bench_load_mem_${tag}`,
    official: `bench_load_off_${tag}`,
    floor: `bench_load_floor_${tag}`,
  };
  const children: Child[] = [];
  const services = {} as Record<LoadSide, Child>;
  const zero = () => Object.fromEntries(sides.map((s) => [s, 0])) as Record<LoadSide, number>;
  const cpuMs = zero();
  const driverMs = zero();
  const postgresMs = zero();
  // Postgres's processes are read from /proc, so only for a server on this host.
  const host = new URL(databaseUrl).hostname;
  let postgresSeen =
    host === "" || host === "localhost" || host === "127.0.0.1" || host === "[::1]";
  const cpuOfChild = async (child: Child): Promise<number> => {
    const answer = child.next<{ cpu: NodeJS.CpuUsage }>();
    child.process.send({ type: "cpu" });
    const { cpu } = await answer;
    return (cpu.user + cpu.system) / 1000;
  };
  const acc = Object.fromEntries(
    sides.map((s) => [
      s,
      { elapsed: 0, latencies: [] as number[], errors: 0, samples: [] as string[] },
    ]),
  ) as Record<
    LoadSide,
    { elapsed: number; latencies: number[]; errors: number; samples: string[] }
  >;
  try {
    const urls = {} as Record<LoadSide, string>;
    // One at a time: three services migrating and warming up at once would only slow each other.
    for (const side of sides) {
      const child = forkChild(["serve", side, databaseUrl, schemas[side]], profile);
      children.push(child);
      services[side] = child;
      urls[side] = (await child.next<{ url: string }>()).url;
    }
    const driver = forkChild(["drive"], false);
    children.push(driver);
    await driver.next<{ ready: true }>();
    type Raw = Awaited<ReturnType<typeof driveLoadRaw>>;
    const drive = async (url: string, durationMs: number): Promise<Raw> => {
      const answer = driver.next<Raw>();
      driver.process.send({ type: "drive", url, concurrency, durationMs });
      return answer;
    };
    // A short warm-up of each side (JIT, pools, prepared statements), not counted.
    for (const side of sides) await drive(urls[side], Math.min(500, roundMs));
    for (let r = 0; r < rounds; r++) {
      // Rotate who goes first, so no side always follows the same one.
      for (let i = 0; i < sides.length; i++) {
        const side = sides[(i + r) % sides.length]!;
        const cpu0 = await cpuOfChild(services[side]);
        const driver0 = await cpuOfChild(driver);
        const postgres0 = postgresSeen ? postgresCpuMs() : undefined;
        const t0 = performance.now();
        const result = await drive(urls[side], roundMs);
        const a = acc[side];
        a.elapsed += performance.now() - t0;
        const postgres1 = postgresSeen ? postgresCpuMs() : undefined;
        driverMs[side] += (await cpuOfChild(driver)) - driver0;
        cpuMs[side] += (await cpuOfChild(services[side])) - cpu0;
        if (postgres0 === undefined || postgres1 === undefined) postgresSeen = false;
        else postgresMs[side] += postgres1 - postgres0;
        a.latencies.push(...result.latencies);
        a.errors += result.errors;
        a.samples.push(...result.samples.slice(0, 5 - a.samples.length));
      }
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    for (const side of sides) await dropSchema(databaseUrl, schemas[side]);
  }
  const out = Object.fromEntries(
    sides.map((s) => [
      s,
      summarize(concurrency, acc[s].elapsed, acc[s].latencies, acc[s].errors, acc[s].samples),
    ]),
  ) as Record<LoadSide, BenchLoadResult>;
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);
  const perTurn = (ms: number, side: LoadSide) =>
    out[side].turns > 0 ? Math.round((ms / out[side].turns) * 100) / 100 : 0;
  const cores = os.availableParallelism();
  const machine = (side: LoadSide): LoadMachineCpu => {
    const service = perTurn(cpuMs[side], side);
    const driverCpu = perTurn(driverMs[side], side);
    const postgres = postgresSeen ? perTurn(postgresMs[side], side) : undefined;
    const total = Math.round((service + driverCpu + (postgres ?? 0)) * 100) / 100;
    return {
      service,
      driver: driverCpu,
      ...(postgres === undefined ? {} : { postgres }),
      total,
      cores,
      boundTurnsPerSecond: total > 0 ? Math.round(((cores * 1000) / total) * 10) / 10 : 0,
    };
  };
  const tps = (side: LoadSide) => out[side].turnsPerSecond;
  return {
    ...out,
    ratios: {
      "threadline/memory": ratio(tps("threadline"), tps("memory")),
      "threadline/official": ratio(tps("threadline"), tps("official")),
      "threadline/floor": ratio(tps("threadline"), tps("floor")),
      "floor/memory": ratio(tps("floor"), tps("memory")),
    },
    cpuMsPerTurn: Object.fromEntries(sides.map((s) => [s, perTurn(cpuMs[s], s)])) as Record<
      LoadSide,
      number
    >,
    machineCpuMsPerTurn: Object.fromEntries(sides.map((s) => [s, machine(s)])) as Record<
      LoadSide,
      LoadMachineCpu
    >,
  };
}

/** The turns' latencies and errors of {@link driveLoad}, for accumulating rounds. */
export async function driveLoadRaw(
  baseUrl: string,
  concurrency: number,
  durationMs: number,
  headers: Record<string, string> = {},
): Promise<{ latencies: number[]; errors: number; samples: string[] }> {
  const latencies: number[] = [];
  const samples: string[] = [];
  let errors = 0;
  const deadline = performance.now() + durationMs;
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
          if (samples.length < 5) samples.push((err as Error).message);
        }
      }
    }),
  );
  return { latencies, errors, samples };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args.includes("--side-by-side")) {
    // `--profile`: the service children under --cpu-prof (profiles in .prof/).
    const result = await benchLoadSideBySide({
      quick: args.includes("--quick"),
      profile: args.includes("--profile"),
    });
    console.log(JSON.stringify(result, null, 2));
    process.exit(0);
  }
  const at = args.indexOf("--base-url");
  const result = await benchLoad({
    quick: args.includes("--quick"),
    ...(at >= 0 && args[at + 1] ? { baseUrl: args[at + 1] } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
  if (result.errors > 0) process.exitCode = 1;
}

/**
 * CPU per chat turn in one process (decision H46): the service's chat turn (what `POST
 * /api/chat` runs, without the HTTP around it) on the service's saver stack over
 * PostgresCheckpointer, and on the same stack over MemorySaver, in blocks of alternating rounds
 * (A B then B A), with an A/A baseline: the same stack as a third side (decision H49).
 *
 * The full HTTP load benchmark (H31) swings by 1-2 ms of CPU per turn from run to run on a
 * shared machine, more than a single change to the saver is worth. Here both sides run in one
 * process with the same heap, on the same cores at the same moment of the sitting, and the HTTP
 * layer (identical on both sides) is left out, so the difference between the sides is what
 * Threadline's saver stack costs a turn. The A/A figure (the same stack against itself) says how
 * large a difference this sitting can tell from zero.
 *
 *   node --import tsx bench/turn-cpu.ts [--quick] [--rounds N] [--turns N] [--concurrency N] [--no-aa]
 *   npm run bench -- --only turncpu
 */
import { randomUUID } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MemorySaver, type BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { Registry } from "prom-client";
import { configSchema } from "../src/config/schema.js";
import { openDatabase } from "../src/db/database.js";
import { migrate } from "../src/db/migrator.js";
import { silentLogger } from "../src/logger.js";
import { buildChatGraph } from "../src/graphs/chat/graph.js";
import { createChatModel } from "../src/graphs/chat/models.js";
import { CHAT_STREAM_MODES, ChatStreamTranslator } from "../src/http/chat-stream.js";
import { InstrumentedCheckpointer, registerServiceMetrics } from "../src/http/metrics.js";
import { parseChatBody } from "../src/http/schemas.js";
import { TurnReadReuse } from "../src/http/turn-read.js";
import { stateMessages, turnInput } from "../src/http/ui-messages.js";
import { buildSavers } from "../src/service/savers.js";
import { median, percentile } from "./stats.js";

/** One chat turn on a thread: `n` counts the thread's turns from 1. */
export type TurnFn = (threadId: string, n: number) => Promise<void>;

/**
 * The chat turn of `POST /api/chat` on `saver`, wrapped as `createApp` wraps the service's
 * checkpointer (metrics, then the turn's read reuse): the body parsed, the thread read for the
 * input, the graph streamed (offline model) and every event translated and serialized as an SSE
 * chunk would be. Only the HTTP request, the thread lock and the socket writes are left out.
 */
export function chatTurn(saver: BaseCheckpointSaver): TurnFn {
  const config = configSchema.parse({ log: { level: "silent" } });
  const metrics = registerServiceMetrics(new Registry(), {});
  const checkpointer = new TurnReadReuse(new InstrumentedCheckpointer(saver, metrics));
  const { model } = createChatModel(config.model);
  const graph = buildChatGraph({ checkpointer, model });
  return async (threadId, n) => {
    const parsed = parseChatBody({
      id: threadId,
      message: {
        id: `${threadId}-u${n}`,
        role: "user",
        parts: [{ type: "text", text: `message ${n}` }],
      },
    });
    if (!parsed.ok) throw new Error(parsed.problems);
    const request = parsed.request;
    await checkpointer.run(threadId, async () => {
      const snapshot = await graph.getState({ configurable: { thread_id: threadId } });
      const input = turnInput(stateMessages(snapshot.values), request);
      const messageId = randomUUID();
      const translator = new ChatStreamTranslator(messageId);
      let sse = 0;
      const events = (await graph.stream(
        { messages: input },
        {
          configurable: { thread_id: threadId, assistantMessageId: messageId },
          streamMode: [...CHAT_STREAM_MODES],
        },
      )) as AsyncIterable<[string, unknown]>;
      for await (const [mode, payload] of events) {
        for (const chunk of translator.translate(mode, payload))
          sse += JSON.stringify(chunk).length;
      }
      for (const chunk of translator.finish()) sse += JSON.stringify(chunk).length;
      if (sse === 0) throw new Error("the turn streamed no tokens");
    });
  };
}

/**
 * A full garbage collection, now: `global.gc` (node --expose-gc), else the flag set at run time
 * and V8's `gc` taken from a fresh context.
 */
function collectGarbage(): void {
  const own = (globalThis as { gc?: () => void }).gc;
  if (own) return own();
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** Options of {@link measureTurnCpu}. */
export interface TurnCpuRounds {
  /** Measured rounds per side, rounded up to an even number (blocks of two); default 24 (quick: 4). */
  rounds?: number;
  /** Concurrent chats, each on a new thread of its own every round; default 50. */
  concurrency?: number;
  /** Turns of each chat per round; default 4. */
  turns?: number;
  quick?: boolean;
}

/** The spread of a paired difference over the blocks, ms of CPU per turn. */
export interface PairedSpread {
  /** Median over the blocks. */
  median: number;
  /** 25th and 75th percentiles over the blocks. */
  p25: number;
  p75: number;
}

/** What {@link measureTurnCpu} measured, per side: process CPU (user + system) per turn, ms. */
export interface TurnCpuResult {
  /** Measured rounds per side. */
  rounds: number;
  /** Blocks of two rounds per side (the order of the first reversed in the second). */
  blocks: number;
  turnsPerRound: number;
  /** Every round's CPU ms per turn, by side, in the order the rounds ran. */
  perRound: Record<string, number[]>;
  /** Median over the rounds. */
  cpuMsPerTurn: Record<string, number>;
}

/**
 * Runs the sides in blocks: in block `b` each side runs a round in an order rotated by `b`, then
 * again in the reverse order (A B, B A; A B C, C B A), after one unmeasured warm-up round per
 * side. Each round's `process.cpuUsage()` (user + system, so the pg sockets' writes count) is
 * divided by its turns, a full garbage collection at its end included (so each round pays for
 * its own garbage instead of leaving a collection to the next). Within a block every side takes
 * each slot once, so what a slot is worth (the JIT's state, the side before it) and a drift of
 * the machine's load over the block cancel out of a side-to-side difference (see
 * {@link blockDeltas}).
 */
export async function measureTurnCpu(
  sides: Record<string, TurnFn>,
  options: TurnCpuRounds = {},
): Promise<TurnCpuResult> {
  const quick = options.quick ?? false;
  const blocks = Math.max(1, Math.ceil((options.rounds ?? (quick ? 4 : 24)) / 2));
  const concurrency = options.concurrency ?? 50;
  const turns = options.turns ?? 4;
  const names = Object.keys(sides);
  // Each turn starts in a macrotask of its own, as each request of the service does (its
  // socket's data): a stream started in the promise continuation of the previous turn's end
  // gets no token events from LangGraph.
  const round = async (fn: TurnFn) => {
    const tag = randomUUID().slice(0, 8);
    const cpu0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, chat) => {
        const threadId = `cpu-${tag}-${chat}`;
        for (let n = 1; n <= turns; n++) {
          await new Promise((resolve) => setImmediate(resolve));
          await fn(threadId, n);
        }
      }),
    );
    // The round's garbage is collected within the round: a collection it left to the next
    // round was the largest source of round-to-round noise (an A/A block read ±0.8 ms per turn).
    collectGarbage();
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1000 / (concurrency * turns);
  };
  collectGarbage();
  for (const name of names) await round(sides[name]!);
  const perRound: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let b = 0; b < blocks; b++) {
    const order = names.map((_, i) => names[(i + b) % names.length]!);
    for (const name of [...order, ...[...order].reverse()])
      perRound[name]!.push(await round(sides[name]!));
  }
  return {
    rounds: blocks * 2,
    blocks,
    turnsPerRound: concurrency * turns,
    perRound,
    cpuMsPerTurn: Object.fromEntries(names.map((n) => [n, median(perRound[n]!)])),
  };
}

/**
 * Per block, `a - b`: the mean of `a`'s two rounds minus the mean of `b`'s (rounds `2k` and
 * `2k + 1` of each side are block `k`'s), ms.
 */
export function blockDeltas(r: TurnCpuResult, a: string, b: string): number[] {
  const as = r.perRound[a]!;
  const bs = r.perRound[b]!;
  return Array.from(
    { length: r.blocks },
    (_, k) => (as[2 * k]! + as[2 * k + 1]! - bs[2 * k]! - bs[2 * k + 1]!) / 2,
  );
}

/** Median and quartiles over the blocks of `a - b` (see {@link blockDeltas}), ms. */
export function pairedSpread(r: TurnCpuResult, a: string, b: string): PairedSpread {
  const d = blockDeltas(r, a, b);
  return { median: median(d), p25: percentile(d, 25), p75: percentile(d, 75) };
}

/** Median over the blocks of `a - b`, ms. */
export function pairedDelta(r: TurnCpuResult, a: string, b: string): number {
  return median(blockDeltas(r, a, b));
}

/** Median over the blocks of `b / a`: the throughput of `a` relative to `b` for a CPU-bound service. */
export function pairedThroughputRatio(r: TurnCpuResult, a: string, b: string): number {
  const as = r.perRound[a]!;
  const bs = r.perRound[b]!;
  return median(
    Array.from(
      { length: r.blocks },
      (_, k) => (bs[2 * k]! + bs[2 * k + 1]!) / (as[2 * k]! + as[2 * k + 1]!),
    ),
  );
}

/** Result of {@link benchTurnCpu}. */
export interface BenchTurnCpuResult extends TurnCpuResult {
  /** Median over the blocks of `threadline - memory`, ms of CPU per turn: the saver stack's own cost. */
  deltaMs: number;
  /** Its quartiles over the blocks. */
  delta: PairedSpread;
  /** Median over the blocks of `memory / threadline` CPU per turn: the throughput ratio it implies. */
  ratio: number;
  /**
   * The A/A baseline: the same stack in two sides (`threadline` and `threadline-aa`, one saver,
   * one graph), `threadline-aa - threadline` over the blocks. What it reads is what this sitting
   * cannot tell from zero; absent with `aa: false`.
   */
  aa?: PairedSpread;
}

/** The A/A side's name in {@link BenchTurnCpuResult.perRound}. */
export const AA_SIDE = "threadline-aa";

/**
 * The service's saver stack as `threadline serve` builds it (PostgresCheckpointer behind the
 * started fallback, `buildSavers`, pool of 20, migrations applied) in a fresh schema, against
 * MemorySaver, both behind `createApp`'s wrappers; with `aa` (default true) the same stack again
 * as a third side, for the A/A baseline.
 */
export async function benchTurnCpu(opts: {
  url: string;
  quick: boolean;
  rounds?: number;
  turns?: number;
  concurrency?: number;
  aa?: boolean;
}): Promise<BenchTurnCpuResult> {
  const schema = `bench_turncpu_${randomUUID().slice(0, 8)}`;
  const config = configSchema.parse({
    database: { url: opts.url, schema, pool: { size: 20 } },
    cleanup: { enabled: false },
    log: { level: "silent" },
  });
  const db = await openDatabase(config, silentLogger);
  try {
    await migrate(db.sessionPool, { schema });
    const savers = await buildSavers(config, db);
    try {
      const threadline = chatTurn(savers.checkpointer);
      const aa = opts.aa ?? true;
      const r = await measureTurnCpu(
        {
          threadline,
          memory: chatTurn(new MemorySaver()),
          ...(aa ? { [AA_SIDE]: threadline } : {}),
        },
        {
          quick: opts.quick,
          ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}),
          ...(opts.turns !== undefined ? { turns: opts.turns } : {}),
          ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
        },
      );
      const delta = pairedSpread(r, "threadline", "memory");
      return {
        ...r,
        deltaMs: delta.median,
        delta,
        ratio: pairedThroughputRatio(r, "threadline", "memory"),
        ...(aa ? { aa: pairedSpread(r, AA_SIDE, "threadline") } : {}),
      };
    } finally {
      await savers.fallback?.close();
    }
  } finally {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const num = (flag: string) => {
    const at = args.indexOf(flag);
    return at >= 0 ? Number(args[at + 1]) : undefined;
  };
  const rounds = num("--rounds");
  const turns = num("--turns");
  const concurrency = num("--concurrency");
  const result = await benchTurnCpu({
    url:
      process.env.BENCH_DATABASE_URL ??
      process.env.DATABASE_URL ??
      "postgres://postgres@127.0.0.1:5432/test",
    quick: args.includes("--quick"),
    aa: !args.includes("--no-aa"),
    ...(rounds !== undefined ? { rounds } : {}),
    ...(turns !== undefined ? { turns } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
}

/**
 * CPU per chat turn in one process (decision H46): the service's chat turn (what `POST
 * /api/chat` runs, without the HTTP around it) on the service's saver stack over
 * PostgresCheckpointer, and on the same stack over MemorySaver, in alternating rounds.
 *
 * The full HTTP load benchmark (H31) swings by 1-2 ms of CPU per turn from run to run on a
 * shared machine, more than a single change to the saver is worth. Here both sides run in one
 * process with the same heap, on the same cores at the same moment of the sitting, and the HTTP
 * layer (identical on both sides) is left out, so the difference between the sides is what
 * Threadline's saver stack costs a turn.
 *
 *   node --import tsx bench/turn-cpu.ts [--quick] [--rounds N] [--turns N] [--concurrency N]
 *   npm run bench -- --only turncpu
 */
import { randomUUID } from "node:crypto";
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
import { median } from "./stats.js";

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

/** Options of {@link measureTurnCpu}. */
export interface TurnCpuRounds {
  /** Measured rounds per side; default 12 (quick: 4). */
  rounds?: number;
  /** Concurrent chats, each on a new thread of its own every round; default 50. */
  concurrency?: number;
  /** Turns of each chat per round; default 8 (quick: 4). */
  turns?: number;
  quick?: boolean;
}

/** What {@link measureTurnCpu} measured, per side: process CPU (user + system) per turn, ms. */
export interface TurnCpuResult {
  rounds: number;
  turnsPerRound: number;
  /** Every round's CPU ms per turn, by side, in the order the rounds ran. */
  perRound: Record<string, number[]>;
  /** Median over the rounds. */
  cpuMsPerTurn: Record<string, number>;
}

/**
 * Runs `concurrency` chats of `turns` turns on each side in turn, a round each, rotating which
 * side goes first, after one unmeasured warm-up round per side; each round's
 * `process.cpuUsage()` (user + system, so the pg sockets' writes count) is divided by its turns.
 * A garbage collection started by one round may finish in the next: the rotation spreads that
 * over the sides alike.
 */
export async function measureTurnCpu(
  sides: Record<string, TurnFn>,
  options: TurnCpuRounds = {},
): Promise<TurnCpuResult> {
  const quick = options.quick ?? false;
  const rounds = options.rounds ?? (quick ? 4 : 12);
  const concurrency = options.concurrency ?? 50;
  const turns = options.turns ?? (quick ? 4 : 8);
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
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1000 / (concurrency * turns);
  };
  for (const name of names) await round(sides[name]!);
  const perRound: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]!;
      perRound[name]!.push(await round(sides[name]!));
    }
  }
  return {
    rounds,
    turnsPerRound: concurrency * turns,
    perRound,
    cpuMsPerTurn: Object.fromEntries(names.map((n) => [n, median(perRound[n]!)])),
  };
}

/** Median over the rounds of `a - b` (paired by round), ms. */
export function pairedDelta(r: TurnCpuResult, a: string, b: string): number {
  const bs = r.perRound[b]!;
  return median(r.perRound[a]!.map((x, i) => x - bs[i]!));
}

/** Median over the rounds of `b / a`: the throughput of `a` relative to `b` for a CPU-bound service. */
export function pairedThroughputRatio(r: TurnCpuResult, a: string, b: string): number {
  const bs = r.perRound[b]!;
  return median(r.perRound[a]!.map((x, i) => bs[i]! / x));
}

/** Result of {@link benchTurnCpu}. */
export interface BenchTurnCpuResult extends TurnCpuResult {
  /** Median per-round `threadline - memory`, ms of CPU per turn: the saver stack's own cost. */
  deltaMs: number;
  /** Median per-round `memory / threadline` CPU per turn: the throughput ratio it implies. */
  ratio: number;
}

/**
 * The service's saver stack as `threadline serve` builds it (PostgresCheckpointer behind the
 * started fallback, `buildSavers`, pool of 20, migrations applied) in a fresh schema, against
 * MemorySaver, both behind `createApp`'s wrappers.
 */
export async function benchTurnCpu(opts: {
  url: string;
  quick: boolean;
  rounds?: number;
  turns?: number;
  concurrency?: number;
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
      const r = await measureTurnCpu(
        { threadline: chatTurn(savers.checkpointer), memory: chatTurn(new MemorySaver()) },
        {
          quick: opts.quick,
          ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}),
          ...(opts.turns !== undefined ? { turns: opts.turns } : {}),
          ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
        },
      );
      return {
        ...r,
        deltaMs: pairedDelta(r, "threadline", "memory"),
        ratio: pairedThroughputRatio(r, "threadline", "memory"),
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
    ...(rounds !== undefined ? { rounds } : {}),
    ...(turns !== undefined ? { turns } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
}

/**
 * A turn through the Agent Server API over HTTP (`runs.wait` and `runs.stream` of the real
 * `@langchain/langgraph-sdk` Client) against the same graph invoked in-process on MemorySaver,
 * side by side: every round runs one turn of each variant in turn on threads of the same length,
 * so drift on a shared machine hits all of them alike. Ratios are medians of per-round ratios of
 * the round's p50.
 *
 * The service runs in a child process of its own (bench/agent-server-child.ts, decision H40), as
 * the load bench's do (H31): the SDK client and the in-process baselines run here, so client and
 * server CPU do not share one event loop.
 *
 * Two floors are measured in the same rounds (what any durable implementation pays):
 * - raw: the graph in-process on MemorySaver, the SDK's `runs.wait` against a trivial Express
 *   route in the service's process (`{}` after parsing the body), and one durable single-row
 *   INSERT per commit a run needs: its start, each of the graph's own `put` (counted; a task's
 *   `putWrites` rides with the next put), its end;
 * - threadline: the graph in-process on PostgresCheckpointer (its own commits included), the
 *   same trivial round trip, and the two commits of the run record (start, end).
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { HumanMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import { MemorySaver } from "@langchain/langgraph";
import type { Checkpoint, CheckpointMetadata, PendingWrite } from "@langchain/langgraph-checkpoint";
import { Client } from "@langchain/langgraph-sdk";
import pg from "pg";
import { PostgresCheckpointer } from "../src/checkpoint/postgres/saver.js";
import { attachPoolErrorHandler } from "../src/db/pool.js";
import { forkChild } from "./child.js";
import { graph as builder } from "./agent-graph.js";
import { median } from "./stats.js";

export interface BenchAgentServerOptions {
  url: string;
  quick: boolean;
  /** Rounds and turns per round; default 3 x 10 quick, 7 x 30 otherwise. */
  rounds?: number;
  turnsPerRound?: number;
  /** Run the service child under `--cpu-prof` (profile in `.prof/`). */
  profile?: boolean;
}

/** p50 ms per turn and the ratios against MemorySaver in-process. */
export interface BenchAgentServerResult {
  rounds: number;
  turnsPerRound: number;
  /** Commits the graph itself needs per turn: its `put` calls (counted on MemorySaver). */
  graphCommitsPerTurn: number;
  /** Its `putWrites` calls per turn (each rides with the next put on PostgresCheckpointer). */
  graphWritesPerTurn: number;
  p50: {
    wait: number;
    stream: number;
    memory: number;
    /** The graph in-process on PostgresCheckpointer. */
    threadline: number;
    /** The SDK's `runs.wait` against a trivial Express route in the service's process. */
    sdk: number;
    /** A plain `fetch` POST of the same body to that route. */
    http: number;
    /** A durable single-row INSERT (one round trip, one WAL flush). */
    commit: number;
    /** memory + sdk + (2 + graphCommitsPerTurn) x commit. */
    rawFloor: number;
    /** threadline + sdk + 2 x commit. */
    floor: number;
  };
  ratios: {
    "wait/memory": number;
    "stream/memory": number;
    "threadline/memory": number;
    "sdk/memory": number;
    "http/memory": number;
    "commit/memory": number;
    /** What a durable run over HTTP costs at least, against MemorySaver in-process. */
    "rawFloor/memory": number;
    "floor/memory": number;
    "wait/rawFloor": number;
    "wait/floor": number;
    "stream/floor": number;
  };
}

const CHILD = fileURLToPath(new URL("./agent-server-child.ts", import.meta.url));

/** MemorySaver that counts the graph's `put` and `putWrites` calls. */
class CountingSaver extends MemorySaver {
  puts = 0;
  writeCalls = 0;
  override put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
  ): Promise<RunnableConfig> {
    this.puts += 1;
    return super.put(config, checkpoint, metadata);
  }
  override putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string) {
    this.writeCalls += 1;
    return super.putWrites(config, writes, taskId);
  }
}

export async function benchAgentServer(
  options: BenchAgentServerOptions,
): Promise<BenchAgentServerResult> {
  const rounds = options.rounds ?? (options.quick ? 3 : 7);
  const turnsPerRound = options.turnsPerRound ?? (options.quick ? 10 : 30);
  const schema = `bench_agent_${randomUUID().slice(0, 8)}`;
  const child = forkChild(CHILD, [options.url, schema], options.profile ?? false);
  const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: options.url, max: 4 }));
  try {
    const { url, trivialUrl } = await child.next<{ url: string; trivialUrl: string }>();
    const client = new Client({ apiUrl: url, apiKey: null });
    const trivialClient = new Client({ apiUrl: trivialUrl, apiKey: null });
    const memory = builder.compile({ checkpointer: new MemorySaver() });
    // The service migrated the schema; this saver shares it, on threads of its own.
    const inProcess = builder.compile({ checkpointer: new PostgresCheckpointer(pool, { schema }) });
    await pool.query(`CREATE TABLE "${schema}".bench_commit (id text PRIMARY KEY, v text)`);
    const row = "x".repeat(400);
    const input = (n: number) => ({ messages: [{ role: "user", content: `message ${n}` }] });

    // How many commits the graph makes per turn, on a thread as long as the rounds' are.
    const counting = new CountingSaver();
    const counted = builder.compile({ checkpointer: counting });
    const countThread = randomUUID();
    for (let n = 0; n < 3; n++)
      await counted.invoke(
        { messages: [new HumanMessage(`message ${n}`)] },
        { configurable: { thread_id: countThread } },
      );
    // A task's writes can ride with the next put (PostgresCheckpointer does): one commit per put.
    const graphCommitsPerTurn = counting.puts / 3;
    const graphWritesPerTurn = counting.writeCalls / 3;
    const commitsPerRun = 2 + graphCommitsPerTurn;

    const variants = {
      wait: async (threadId: string, n: number) => {
        await client.runs.wait(threadId, "bench", { input: input(n) });
      },
      stream: async (threadId: string, n: number) => {
        for await (const chunk of client.runs.stream(threadId, "bench", {
          input: input(n),
          streamMode: ["values"],
        }))
          void chunk;
      },
      memory: async (threadId: string, n: number) => {
        await memory.invoke(
          { messages: [new HumanMessage(`message ${n}`)] },
          { configurable: { thread_id: threadId } },
        );
      },
      threadline: async (threadId: string, n: number) => {
        await inProcess.invoke(
          { messages: [new HumanMessage(`message ${n}`)] },
          { configurable: { thread_id: threadId } },
        );
      },
      sdk: async (threadId: string, n: number) => {
        await trivialClient.runs.wait(threadId, "bench", { input: input(n) });
      },
      http: async (threadId: string, n: number) => {
        const res = await fetch(`${trivialUrl}/threads/${threadId}/runs/wait`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ assistant_id: "bench", input: input(n) }),
        });
        await res.arrayBuffer();
      },
      commit: async (threadId: string, n: number) => {
        await pool.query(`INSERT INTO "${schema}".bench_commit VALUES ($1, $2)`, [
          `${threadId}:${n}`,
          row,
        ]);
      },
    };
    type Name = keyof typeof variants;
    const names = Object.keys(variants) as Name[];
    const onService = (name: Name) => name === "wait" || name === "stream";
    const threadFor = async (name: Name) =>
      onService(name) ? (await client.threads.create()).thread_id : randomUUID();
    const none = () =>
      Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>;
    const perRound = none();
    const floors = { raw: [] as number[], threadline: [] as number[] };
    const ratioRounds: Record<keyof BenchAgentServerResult["ratios"], number[]> = {
      "wait/memory": [],
      "stream/memory": [],
      "threadline/memory": [],
      "sdk/memory": [],
      "http/memory": [],
      "commit/memory": [],
      "rawFloor/memory": [],
      "floor/memory": [],
      "wait/rawFloor": [],
      "wait/floor": [],
      "stream/floor": [],
    };
    // Warm up every path (JIT, prepared statements, the SDK's connections).
    for (const name of names) {
      const t = await threadFor(name);
      for (let n = 0; n < 5; n++) await variants[name](t, n);
    }
    for (let round = 0; round < rounds; round++) {
      const threads = {} as Record<Name, string>;
      for (const name of names) threads[name] = await threadFor(name);
      const times = none();
      for (let n = 0; n < turnsPerRound; n++) {
        // Rotate the order each turn so no variant always runs right after another.
        for (let i = 0; i < names.length; i++) {
          const name = names[(i + n) % names.length]!;
          const started = performance.now();
          await variants[name](threads[name], n);
          times[name].push(performance.now() - started);
        }
      }
      for (const name of names) perRound[name].push(median(times[name]));
      const p = Object.fromEntries(names.map((n) => [n, median(times[n])])) as Record<Name, number>;
      const raw = p.memory + p.sdk + commitsPerRun * p.commit;
      const floor = p.threadline + p.sdk + 2 * p.commit;
      floors.raw.push(raw);
      floors.threadline.push(floor);
      ratioRounds["wait/memory"].push(p.wait / p.memory);
      ratioRounds["stream/memory"].push(p.stream / p.memory);
      ratioRounds["threadline/memory"].push(p.threadline / p.memory);
      ratioRounds["sdk/memory"].push(p.sdk / p.memory);
      ratioRounds["http/memory"].push(p.http / p.memory);
      ratioRounds["commit/memory"].push(p.commit / p.memory);
      ratioRounds["rawFloor/memory"].push(raw / p.memory);
      ratioRounds["floor/memory"].push(floor / p.memory);
      ratioRounds["wait/rawFloor"].push(p.wait / raw);
      ratioRounds["wait/floor"].push(p.wait / floor);
      ratioRounds["stream/floor"].push(p.stream / floor);
    }
    return {
      rounds,
      turnsPerRound,
      graphCommitsPerTurn,
      graphWritesPerTurn,
      p50: {
        wait: median(perRound.wait),
        stream: median(perRound.stream),
        memory: median(perRound.memory),
        threadline: median(perRound.threadline),
        sdk: median(perRound.sdk),
        http: median(perRound.http),
        commit: median(perRound.commit),
        rawFloor: median(floors.raw),
        floor: median(floors.threadline),
      },
      ratios: Object.fromEntries(
        Object.entries(ratioRounds).map(([k, v]) => [k, median(v)]),
      ) as BenchAgentServerResult["ratios"],
    };
  } finally {
    await child.stop();
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // node --import tsx bench/agent-server.ts [--quick] [--profile] [--rounds N] [--turns N]
  const args = process.argv.slice(2);
  const num = (flag: string) => {
    const at = args.indexOf(flag);
    return at >= 0 ? Number(args[at + 1]) : undefined;
  };
  const r = num("--rounds");
  const t = num("--turns");
  const result = await benchAgentServer({
    url:
      process.env.BENCH_DATABASE_URL ??
      process.env.DATABASE_URL ??
      "postgres://postgres@127.0.0.1:5432/test",
    quick: args.includes("--quick"),
    profile: args.includes("--profile"),
    ...(r !== undefined ? { rounds: r } : {}),
    ...(t !== undefined ? { turnsPerRound: t } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
}

/**
 * A turn through the Agent Server API over HTTP (`runs.wait` and `runs.stream` of the real
 * `@langchain/langgraph-sdk` Client against `startService` in this process, on Postgres) against
 * the same graph invoked in-process on MemorySaver, side by side: every round runs one turn of
 * each variant in turn on threads of the same length, so drift on a shared machine hits all of
 * them alike. Ratios are medians of per-round ratios of the round's p50.
 *
 * The floor (decision H30) is measured in the same rounds: what a durable run over HTTP cannot
 * do without, i.e. the same graph invoked in-process on the service's own saver stack, one HTTP
 * round trip through the service (`GET /ok`) and the two commits a run record needs (the claim
 * before the graph, the end before the answer), each timed as a durable single-row INSERT.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { HumanMessage } from "@langchain/core/messages";
import { MemorySaver } from "@langchain/langgraph";
import { Client } from "@langchain/langgraph-sdk";
import pg from "pg";
import { configSchema } from "../src/config/schema.js";
import { attachPoolErrorHandler } from "../src/db/pool.js";
import { startService } from "../src/service/composition-root.js";
import { graph as builder } from "./agent-graph.js";
import { median } from "./stats.js";

export interface BenchAgentServerOptions {
  url: string;
  quick: boolean;
}

/** p50 ms per turn and the ratios against MemorySaver in-process. */
export interface BenchAgentServerResult {
  rounds: number;
  turnsPerRound: number;
  p50: {
    wait: number;
    stream: number;
    memory: number;
    /** The graph in-process on the service's saver stack (Postgres). */
    threadline: number;
    /** `GET /ok` through the service. */
    http: number;
    /** A durable single-row INSERT (one round trip, one WAL flush). */
    commit: number;
    /** threadline + http + 2 x commit: a run over HTTP with a durable record. */
    floor: number;
  };
  ratios: {
    "wait/memory": number;
    "stream/memory": number;
    "threadline/memory": number;
    /** What a durable run over HTTP costs at least, against MemorySaver in-process. */
    "floor/memory": number;
    "wait/floor": number;
    "stream/floor": number;
  };
}

const GRAPH_FILE = fileURLToPath(new URL("./agent-graph.ts", import.meta.url));

export async function benchAgentServer(
  options: BenchAgentServerOptions,
): Promise<BenchAgentServerResult> {
  const rounds = options.quick ? 3 : 7;
  const turnsPerRound = options.quick ? 10 : 30;
  const schema = `bench_agent_${randomUUID().slice(0, 8)}`;
  const config = configSchema.parse({
    database: { url: options.url, schema },
    server: { port: 0, host: "127.0.0.1", rateLimit: { max: 1_000_000 } },
    cleanup: { enabled: false },
    log: { level: "silent" },
  });
  const service = await startService(config, {
    cleanup: false,
    webRoot: false,
    graphs: [{ name: "bench", file: GRAPH_FILE, exportName: "graph", source: "flag" }],
  });
  const client = new Client({ apiUrl: service.url, apiKey: null });
  const memory = builder.compile({ checkpointer: new MemorySaver() });
  const inProcess = builder.compile({ checkpointer: service.app.threadline.checkpointer });
  const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: options.url, max: 1 }));
  await pool.query(`CREATE TABLE "${schema}".bench_commit (id text PRIMARY KEY, v text)`);
  const row = "x".repeat(400);
  const input = (n: number) => ({ messages: [{ role: "user", content: `message ${n}` }] });

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
    http: async () => {
      const res = await fetch(`${service.url}/ok`);
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
  const local = (name: Name) => name === "memory" || name === "threadline" || name === "commit";
  const none = () =>
    Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  const perRound = none();
  const floors: number[] = [];
  const ratios = {
    wait: [] as number[],
    stream: [] as number[],
    threadline: [] as number[],
    floor: [] as number[],
    waitFloor: [] as number[],
    streamFloor: [] as number[],
  };
  try {
    // Warm up every path (JIT, prepared statements, the SDK's connection).
    for (const name of names) {
      const t = local(name) ? randomUUID() : (await client.threads.create()).thread_id;
      for (let n = 0; n < 3; n++) await variants[name](t, n);
    }
    for (let round = 0; round < rounds; round++) {
      const threads = {} as Record<Name, string>;
      for (const name of names)
        threads[name] = local(name) ? randomUUID() : (await client.threads.create()).thread_id;
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
      const mem = median(times.memory);
      const floor = median(times.threadline) + median(times.http) + 2 * median(times.commit);
      floors.push(floor);
      ratios.wait.push(median(times.wait) / mem);
      ratios.stream.push(median(times.stream) / mem);
      ratios.threadline.push(median(times.threadline) / mem);
      ratios.floor.push(floor / mem);
      ratios.waitFloor.push(median(times.wait) / floor);
      ratios.streamFloor.push(median(times.stream) / floor);
    }
  } finally {
    await service.shutdown("bench");
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
  return {
    rounds,
    turnsPerRound,
    p50: {
      wait: median(perRound.wait),
      stream: median(perRound.stream),
      memory: median(perRound.memory),
      threadline: median(perRound.threadline),
      http: median(perRound.http),
      commit: median(perRound.commit),
      floor: median(floors),
    },
    ratios: {
      "wait/memory": median(ratios.wait),
      "stream/memory": median(ratios.stream),
      "threadline/memory": median(ratios.threadline),
      "floor/memory": median(ratios.floor),
      "wait/floor": median(ratios.waitFloor),
      "stream/floor": median(ratios.streamFloor),
    },
  };
}

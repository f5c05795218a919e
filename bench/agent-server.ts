/**
 * A turn through the Agent Server API over HTTP (`runs.wait` and `runs.stream` of the real
 * `@langchain/langgraph-sdk` Client against `startService` in this process, on Postgres) against
 * the same graph invoked in-process on MemorySaver, side by side: every round runs one turn of
 * each variant in turn on threads of the same length, so drift on a shared machine hits all three
 * alike. Ratios are medians of per-round ratios of the round's p50.
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
  p50: { wait: number; stream: number; memory: number };
  ratios: { "wait/memory": number; "stream/memory": number };
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
  };
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];
  const perRound: Record<Name, number[]> = { wait: [], stream: [], memory: [] };
  const ratios = { wait: [] as number[], stream: [] as number[] };
  try {
    // Warm up every path (JIT, prepared statements, the SDK's connection).
    for (const name of names) {
      const t = name === "memory" ? randomUUID() : (await client.threads.create()).thread_id;
      for (let n = 0; n < 3; n++) await variants[name](t, n);
    }
    for (let round = 0; round < rounds; round++) {
      const threads = {} as Record<Name, string>;
      for (const name of names)
        threads[name] =
          name === "memory" ? randomUUID() : (await client.threads.create()).thread_id;
      const times: Record<Name, number[]> = { wait: [], stream: [], memory: [] };
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
      ratios.wait.push(median(times.wait) / mem);
      ratios.stream.push(median(times.stream) / mem);
    }
  } finally {
    await service.shutdown("bench");
    const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: options.url, max: 1 }));
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
    },
    ratios: { "wait/memory": median(ratios.wait), "stream/memory": median(ratios.stream) },
  };
}

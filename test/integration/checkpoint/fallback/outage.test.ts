import type { BaseMessage } from "@langchain/core/messages";
import { emptyCheckpoint, uuid6, type CheckpointTuple } from "@langchain/langgraph-checkpoint";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { Registry } from "prom-client";
import {
  FallbackCheckpointer,
  registerFallbackMetrics,
} from "../../../../src/checkpoint/fallback/index.js";
import { createPool } from "../../../../src/db/pool.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../../helpers/db.js";
import { chatGraph, chatTurn } from "../../../helpers/graph.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { saverBehind, sleep, waitFor } from "./setup.js";

const admin = testPool(2);
const schemas: string[] = [];
const opened: Array<{ pool: pg.Pool; fallback: FallbackCheckpointer; proxy: TcpProxy }> = [];

beforeAll(requirePostgres);
afterAll(async () => {
  for (const { fallback, pool, proxy } of opened) {
    await fallback.close();
    if (!pool.ending && !pool.ended) await pool.end(); // the official saver ends its pool itself
    await proxy.close();
  }
  for (const s of schemas) await dropSchema(admin, s);
  await admin.end();
});

async function open(schema: string) {
  const proxy = await TcpProxy.start();
  const { pool, primary, fallback } = saverBehind(proxy, schema);
  opened.push({ pool, fallback, proxy });
  return { proxy, primary, fallback };
}

/** Reads a thread back through a fresh checkpointer on a direct pool (no proxy, no memory). */
async function readBack(schema: string, threadId: string) {
  const fresh = new PostgresCheckpointer(admin, { schema });
  const latest = await fresh.getTuple({ configurable: { thread_id: threadId } });
  const all: CheckpointTuple[] = [];
  for await (const t of fresh.list({ configurable: { thread_id: threadId, checkpoint_ns: "" } }))
    all.push(t);
  return { latest, all };
}

function expectTurns(messages: BaseMessage[], turns: number): void {
  expect(messages).toHaveLength(turns * 2);
  for (let i = 1; i <= turns; i++) {
    expect(messages[2 * (i - 1)]!.content).toBe(`user ${i}`);
    expect(messages[2 * i - 1]!.text).toContain(`reply for turn ${i}:`);
  }
}

/** Every checkpoint's parent is stored, and the parent chain from the latest covers them all. */
function expectIntactChain(latest: CheckpointTuple | undefined, all: CheckpointTuple[]): void {
  const byId = new Map(all.map((t) => [t.checkpoint.id, t]));
  let steps = 0;
  for (let t = latest; t;) {
    steps++;
    const parent = t.parentConfig?.configurable?.checkpoint_id as string | undefined;
    if (parent === undefined) break;
    expect(byId.has(parent)).toBe(true);
    t = byId.get(parent);
  }
  expect(steps).toBe(all.length);
}

describe("FallbackCheckpointer under real network faults", () => {
  it("a chat goes on while the proxy is cut for seconds, and after recovery every turn is in Postgres, in order, 0 lost", async () => {
    const schema = uniqueSchema("tl_fb_outage");
    schemas.push(schema);
    const { proxy, fallback } = await open(schema);
    await fallback.start();
    expect(fallback.status().mode).toBe("primary");
    const registry = new Registry();
    registerFallbackMetrics(registry, fallback);
    const graph = chatGraph(fallback);
    const thread = "chat-outage";
    let turn = 0;
    const say = async () => {
      turn++;
      const messages = await chatTurn(graph, thread, `user ${turn}`);
      expectTurns(messages, turn);
    };

    for (let i = 0; i < 4; i++) await say();
    expect(fallback.status()).toMatchObject({ mode: "primary", pending: 0 });

    await proxy.cut("refuse");
    const cutAt = Date.now();
    for (let i = 0; i < 5; i++) {
      await say(); // acknowledged during the outage
      expect(fallback.status().mode).toBe("fallback");
      await sleep(600);
    }
    expect(Date.now() - cutAt).toBeGreaterThan(3_000);
    const during = fallback.status();
    expect(during.pending).toBeGreaterThan(0);
    expect(during.lastError).toBeDefined();
    const scraped = await registry.metrics();
    expect(scraped).toContain("threadline_fallback_mode 1");
    expect(scraped).toContain(`threadline_fallback_pending_entries ${during.pending}`);

    await proxy.restore();
    await waitFor(() => fallback.status().mode === "primary", 15_000, "recovery");
    expect(fallback.status()).toMatchObject({ pending: 0, failed: 0 });
    expect(fallback.status().replayed).toBeGreaterThanOrEqual(during.pending);
    const after = await registry.metrics();
    expect(after).toContain("threadline_fallback_mode 0");
    expect(after).toContain("threadline_fallback_transitions_total 2");

    for (let i = 0; i < 2; i++) await say();

    const { latest, all } = await readBack(schema, thread);
    expectTurns(latest!.checkpoint.channel_values.messages as BaseMessage[], turn);
    expectIntactChain(latest, all);
    // Each turn stores the same number of checkpoints, outage or not.
    expect(all.length % turn).toBe(0);
  });

  it("starts in fallback mode when Postgres is down at startup, serves calls, and replays when it comes up", async () => {
    const schema = uniqueSchema("tl_fb_start");
    schemas.push(schema);
    const proxy = await TcpProxy.start();
    await proxy.cut("hold"); // a black hole: connects time out instead of failing fast
    const { pool, fallback } = saverBehind(proxy, schema, { operationTimeoutMs: 1_500 });
    opened.push({ pool, fallback, proxy });

    await fallback.start(); // the schema is not even installed yet
    expect(fallback.status().mode).toBe("fallback");
    const graph = chatGraph(fallback);
    for (let turn = 1; turn <= 3; turn++) {
      expectTurns(await chatTurn(graph, "chat-start-down", `user ${turn}`), turn);
    }
    expect(fallback.status().pending).toBeGreaterThan(0);

    await proxy.restore();
    await waitFor(() => fallback.status().mode === "primary", 20_000, "recovery");
    expect(fallback.status().pending).toBe(0);
    const { latest, all } = await readBack(schema, "chat-start-down");
    expectTurns(latest!.checkpoint.channel_values.messages as BaseMessage[], 3);
    expectIntactChain(latest, all);
  });

  it("replays a deleteThread made during the outage, after the writes it follows and without the ones it dropped", async () => {
    const schema = uniqueSchema("tl_fb_delete");
    schemas.push(schema);
    const { proxy, fallback } = await open(schema);
    await fallback.start();
    const graph = chatGraph(fallback);
    await chatTurn(graph, "doomed", "user 1");
    await chatTurn(graph, "kept", "user 1");

    await proxy.cut("reset");
    await chatTurn(graph, "doomed", "user 2");
    await chatTurn(graph, "kept", "user 2");
    const before = fallback.status().pending;
    await fallback.deleteThread("doomed");
    expect(fallback.status().pending).toBeLessThan(before); // its pending entries were dropped
    expect(await fallback.getTuple({ configurable: { thread_id: "doomed" } })).toBeUndefined();
    // A thread deleted during the outage starts over cleanly.
    expectTurns(await chatTurn(graph, "doomed", "user 1"), 1);

    await proxy.restore();
    await waitFor(() => fallback.status().mode === "primary", 15_000, "recovery");
    const doomed = await readBack(schema, "doomed");
    expectTurns(doomed.latest!.checkpoint.channel_values.messages as BaseMessage[], 1);
    expectIntactChain(doomed.latest, doomed.all);
    const kept = await readBack(schema, "kept");
    expectTurns(kept.latest!.checkpoint.channel_values.messages as BaseMessage[], 2);
  });

  it("a write value changed after putWrites was called is read during an outage as Postgres stored it", async () => {
    const schema = uniqueSchema("tl_fb_mutated");
    schemas.push(schema);
    const { proxy, fallback } = await open(schema);
    await fallback.start();
    const saved = await fallback.put(
      { configurable: { thread_id: "mutated", checkpoint_ns: "" } },
      { ...emptyCheckpoint(), id: uuid6(-1) },
      { source: "input", step: -1, parents: {} },
      {},
    );
    const value: { content: string; id?: string } = { content: "hi" };
    const written = fallback.putWrites(saved, [["messages", value]], "task-1");
    value.id = "given later"; // as LangGraph's messages reducer gives a message its id in place
    await written;

    await proxy.cut("reset");
    const fromMemory = await fallback.getTuple(saved);
    expect(fallback.status().mode).toBe("fallback");
    expect(fromMemory?.pendingWrites).toEqual([["task-1", "messages", { content: "hi" }]]);
    await proxy.restore();
    await waitFor(() => fallback.status().mode === "primary", 15_000, "recovery");
    const { latest } = await readBack(schema, "mutated");
    expect(latest?.pendingWrites).toEqual(fromMemory?.pendingWrites);
  });

  it("wraps any BaseCheckpointSaver: the official PostgresSaver keeps a chat going through an outage too", async () => {
    const schema = uniqueSchema("tl_fb_official");
    schemas.push(schema);
    const proxy = await TcpProxy.start();
    const pool = createPool({
      connectionString: proxy.url(TEST_DATABASE_URL),
      connectTimeoutMs: 1_000,
      max: 2,
    });
    const official = new PostgresSaver(pool, undefined, { schema });
    const fallback = new FallbackCheckpointer(official, {
      probeIntervalMs: 100,
      probeMaxIntervalMs: 400,
      setup: () => official.setup(),
    });
    opened.push({ pool, fallback, proxy });
    await fallback.start();
    const graph = chatGraph(fallback);
    expectTurns(await chatTurn(graph, "official", "user 1"), 1);
    await proxy.cut("reset");
    expectTurns(await chatTurn(graph, "official", "user 2"), 2);
    expect(fallback.status().mode).toBe("fallback");
    await proxy.restore();
    await waitFor(() => fallback.status().mode === "primary", 15_000, "recovery");
    const fresh = new PostgresSaver(admin, undefined, { schema });
    const latest = await fresh.getTuple({ configurable: { thread_id: "official" } });
    expectTurns(latest!.checkpoint.channel_values.messages as BaseMessage[], 2);
  });
});

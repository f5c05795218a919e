import type { BaseMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointMetadata,
  CheckpointTuple,
} from "@langchain/langgraph-checkpoint";
import { afterAll, describe, expect, it } from "vitest";
import { FallbackCheckpointer } from "../../../../src/checkpoint/fallback/index.js";
import { ForwardingSaver } from "../../../../src/checkpoint/forwarding-saver.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import { createPool } from "../../../../src/db/pool.js";
import { installedSchema, TEST_DATABASE_URL } from "../../../helpers/db.js";
import { chatGraph, chatTurn } from "../../../helpers/graph.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { sleep, waitFor } from "./setup.js";

const { admin, schema } = installedSchema("tl_fb_route");
const proxies: TcpProxy[] = [];
afterAll(async () => {
  for (const p of proxies) await p.close();
});

/** A Postgres checkpointer whose puts of one thread take `delayMs` longer (a slow replay). */
class SlowThread extends ForwardingSaver {
  delayMs = 0;
  constructor(
    inner: PostgresCheckpointer,
    private readonly slowThread: string,
  ) {
    super(inner);
  }

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    if (this.delayMs > 0 && config.configurable?.thread_id === this.slowThread)
      await sleep(this.delayMs);
    return this.inner.put(config, checkpoint, metadata, newVersions);
  }
}

function expectTurns(messages: BaseMessage[], turns: number): void {
  expect(messages.map((m) => m.text.split(":")[0])).toEqual(
    Array.from({ length: turns }, (_, i) => [`user ${i + 1}`, `reply for turn ${i + 1}`]).flat(),
  );
}

/** The thread's latest checkpoint and its parent chain, read from Postgres directly. */
async function inPostgres(threadId: string) {
  const reader = new PostgresCheckpointer(admin, { schema });
  const latest = await reader.getTuple({ configurable: { thread_id: threadId } });
  const all: CheckpointTuple[] = [];
  for await (const t of reader.list({ configurable: { thread_id: threadId, checkpoint_ns: "" } }))
    all.push(t);
  const byId = new Map(all.map((t) => [t.checkpoint.id, t]));
  let chain = 0;
  for (let t = latest; t; chain++) {
    const parent = t.parentConfig?.configurable?.checkpoint_id as string | undefined;
    t = parent === undefined ? undefined : byId.get(parent);
  }
  return {
    messages: (latest?.checkpoint.channel_values["messages"] ?? []) as BaseMessage[],
    chain,
    stored: all.length,
  };
}

describe("routing while the log replays", () => {
  it("a thread with nothing logged goes to Postgres at once, a thread still replaying waits for its replay, and neither grows the log", async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const pool = createPool({
      connectionString: proxy.url(TEST_DATABASE_URL),
      applicationName: "tl_fallback_routing",
      max: 4,
      connectTimeoutMs: 15_000,
    });
    const slow = new SlowThread(new PostgresCheckpointer(pool, { schema }), "busy");
    const fallback = new FallbackCheckpointer(slow, {
      probeIntervalMs: 100,
      probeMaxIntervalMs: 400,
      operationTimeoutMs: 30_000,
    });
    try {
      await fallback.start();
      const graph = chatGraph(fallback);
      const turns = { busy: 0, idle: 0 };
      const say = async (thread: "busy" | "idle") => {
        turns[thread] += 1;
        expectTurns(await chatTurn(graph, thread, `user ${turns[thread]}`), turns[thread]);
      };
      for (let i = 0; i < 2; i++) for (const t of ["busy", "idle"] as const) await say(t);

      await proxy.cut("refuse");
      for (let i = 0; i < 4; i++) await say("busy"); // logged: 12 puts to replay
      expect(fallback.status().mode).toBe("fallback");
      const logged = fallback.status().pending;
      expect(logged).toBeGreaterThan(0);

      slow.delayMs = 300; // the replay of "busy" takes seconds
      await proxy.restore();
      await waitFor(() => fallback.status().replaying, 15_000, "the replay to begin");

      // "idle" has nothing logged: its turn goes to Postgres while "busy" still replays.
      await say("idle");
      const during = fallback.status();
      expect(during).toMatchObject({ mode: "fallback", replaying: true });
      expect(during.pending).toBeGreaterThan(0);
      expect(during.pending).toBeLessThanOrEqual(logged); // the log only shrank
      const idle = await inPostgres("idle");
      expectTurns(idle.messages, 3);
      expect(idle.chain).toBe(idle.stored);

      // "busy" still has logged entries: its next turn waits for their replay, then follows them.
      await say("busy");
      expect(fallback.status().pending).toBeLessThanOrEqual(during.pending);
      const busy = await inPostgres("busy");
      expectTurns(busy.messages, 7);
      expect(busy.chain).toBe(busy.stored);

      await waitFor(() => fallback.status().mode === "primary", 30_000, "primary mode");
      expect(fallback.status()).toMatchObject({ pending: 0, failed: 0, transitions: 2 });
    } finally {
      await fallback.close();
      await pool.end().catch(() => undefined);
    }
  }, 90_000);
});

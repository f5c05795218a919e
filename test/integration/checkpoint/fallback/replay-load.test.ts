import { HumanMessage, type BaseMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointMetadata,
  PendingWrite,
} from "@langchain/langgraph-checkpoint";
import type pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { FallbackCheckpointer } from "../../../../src/checkpoint/fallback/index.js";
import { ForwardingSaver } from "../../../../src/checkpoint/forwarding-saver.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import { createPool } from "../../../../src/db/pool.js";
import { installedSchema, TEST_DATABASE_URL } from "../../../helpers/db.js";
import { chatGraph } from "../../../helpers/graph.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { sleep, waitFor } from "./setup.js";

/** Conversations chatting at once, each a turn then a pause, for the whole run. */
const THREADS = 6;
const PAUSE_MS = 200;
/** Turns per thread before the outage (the threads have a durable history when it begins). */
const WARMUP_TURNS = 5;
const OUTAGE_MS = 20_000;
/** Generous: on an idle machine the replay drains in a few seconds (see the log line). */
const DRAIN_BOUND_MS = 75_000;
/** Traffic goes on this long once the log drained, so the test sees primary mode under load. */
const AFTER_DRAIN_MS = 2_000;

const withOutage = installedSchema("tl_fb_load");
const baseline = installedSchema("tl_fb_base");
const proxies: TcpProxy[] = [];
afterAll(async () => {
  for (const p of proxies) await p.close();
});

/** What one acknowledged put held: the checkpoint's messages as `id|type|text`. */
interface Acked {
  threadId: string;
  checkpointId: string;
  messages: string[];
}

const describeMessages = (messages: unknown): string[] =>
  ((messages ?? []) as BaseMessage[]).map((m) => `${m.id}|${m.getType()}|${m.text}`);

/**
 * Records every checkpoint the checkpointer acknowledged, with its messages as they were put,
 * and the entries (checkpoints + writes) acknowledged, so the test can read each one back from
 * Postgres and compute the live rate.
 */
class Recorder extends ForwardingSaver {
  readonly acked: Acked[] = [];
  entries = 0;

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const messages = describeMessages(checkpoint.channel_values["messages"]);
    const result = await this.inner.put(config, checkpoint, metadata, newVersions);
    this.acked.push({
      threadId: String(config.configurable?.thread_id),
      checkpointId: checkpoint.id,
      messages,
    });
    this.entries += 1;
    return result;
  }

  override async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath?: string,
  ): Promise<void> {
    await this.inner.putWrites(config, writes, taskId, taskPath);
    this.entries += writes.length;
  }
}

const threadIds = Array.from({ length: THREADS }, (_, i) => `load-${i}`);
const userText = (threadId: string, turn: number) => `user turn ${turn} of ${threadId}`;

/**
 * One conversation: turns until `until(turns)` says stop, each checked against the thread's
 * whole history (2 messages per turn, in order).
 */
async function converse(
  graph: ReturnType<typeof chatGraph>,
  threadId: string,
  turns: { done: number },
  until: (done: number) => boolean,
  pauseMs: number,
): Promise<void> {
  while (!until(turns.done)) {
    const turn = turns.done + 1;
    const out = await graph.invoke(
      { messages: [new HumanMessage(userText(threadId, turn))] },
      { configurable: { thread_id: threadId } },
    );
    const messages = out.messages;
    expect(messages).toHaveLength(turn * 2);
    expect(messages[turn * 2 - 2]!.text).toBe(userText(threadId, turn));
    expect(messages[turn * 2 - 1]!.text).toContain(`reply for turn ${turn}:`);
    turns.done = turn;
    if (pauseMs > 0) await sleep(pauseMs);
  }
}

/** Bytes of the checkpoint tables: on disk (with indexes and TOAST) and of the rows themselves. */
async function storage(admin: pg.Pool, schema: string) {
  const { rows } = await admin.query<{ disk: string; rows: string; full: number }>(
    `SELECT
       (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'r'
           AND c.relname IN ('checkpoints', 'checkpoint_blobs', 'checkpoint_writes'))::text AS disk,
       ((SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM ${q(schema)}.checkpoint_blobs b)
        + (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM ${q(schema)}.checkpoints c)
        + (SELECT coalesce(sum(pg_column_size(w.*)), 0) FROM ${q(schema)}.checkpoint_writes w))::text
         AS rows,
       (SELECT count(*)::int FROM ${q(schema)}.checkpoint_blobs
         WHERE channel = 'messages' AND delta_base IS NULL) AS full`,
    [schema],
  );
  const r = rows[0]!;
  return { disk: Number(r.disk), rows: Number(r.rows), fullMessageRows: r.full };
}

const q = (schema: string) => `"${schema.replace(/"/g, '""')}"`;

/** Every acknowledged checkpoint, read back by id from Postgres (no proxy, no memory). */
async function expectAllInPostgres(admin: pg.Pool, schema: string, acked: Acked[]) {
  const reader = new PostgresCheckpointer(admin, { schema });
  const stored = new Map<string, string[]>();
  for (const threadId of threadIds) {
    for await (const t of reader.list({ configurable: { thread_id: threadId, checkpoint_ns: "" } }))
      stored.set(
        `${threadId}/${t.checkpoint.id}`,
        describeMessages(t.checkpoint.channel_values["messages"]),
      );
  }
  const wrong = acked.filter((a) => {
    const messages = stored.get(`${a.threadId}/${a.checkpointId}`);
    return messages === undefined || messages.join("\n") !== a.messages.join("\n");
  });
  expect({ acked: acked.length, missingOrDifferent: wrong.slice(0, 3) }).toEqual({
    acked: acked.length,
    missingOrDifferent: [],
  });
  expect(stored.size).toBe(acked.length);
}

/**
 * The fallback over a Postgres checkpointer behind a proxy of its own, probing as setup.ts does.
 * A loaded machine can take seconds to connect or to answer: only the proxy makes outages here.
 */
async function open(schema: string) {
  const proxy = await TcpProxy.start();
  proxies.push(proxy);
  const pool = createPool({
    connectionString: proxy.url(TEST_DATABASE_URL),
    applicationName: "tl_fallback_load",
    max: 4,
    connectTimeoutMs: 15_000,
  });
  const primary = new PostgresCheckpointer(pool, { schema });
  const fallback = new FallbackCheckpointer(primary, {
    probeIntervalMs: 100,
    probeMaxIntervalMs: 400,
    operationTimeoutMs: 30_000,
    setup: () => primary.setup(),
  });
  const recorder = new Recorder(fallback);
  return { proxy, pool, fallback, recorder, graph: chatGraph(recorder) };
}

async function closeAll(fallback: FallbackCheckpointer, pool: pg.Pool) {
  await fallback.close();
  await pool.end().catch(() => undefined);
}

describe("an outage of 20 s under steady chat load", () => {
  it("replay drains while traffic continues, every acknowledged checkpoint reads back from Postgres exactly, storage within 1.5x of a run without the outage", async () => {
    // ---- the run with an outage
    const run = await open(withOutage.schema);
    const turns = threadIds.map(() => ({ done: 0 }));
    const report: Record<string, number> = {};
    let stop = false;
    try {
      await run.fallback.start();
      expect(run.fallback.mode).toBe("primary");
      await Promise.all(
        threadIds.map((id, i) => converse(run.graph, id, turns[i]!, (n) => n >= WARMUP_TURNS, 0)),
      );
      const traffic = Promise.all(
        threadIds.map((id, i) => converse(run.graph, id, turns[i]!, () => stop, PAUSE_MS)),
      );
      // Awaited after the drain; a failed turn must not be an unhandled rejection meanwhile.
      traffic.catch(() => undefined);
      const turnsNow = () => turns.reduce((n, t) => n + t.done, 0);

      await run.proxy.cut("refuse");
      const cutAt = Date.now();
      const entriesAtCut = run.recorder.entries;
      const turnsAtCut = turnsNow();
      await waitFor(() => run.fallback.mode === "fallback", 10_000, "fallback mode");
      await sleep(OUTAGE_MS - (Date.now() - cutAt));
      const down = run.fallback.status();
      expect(down.mode).toBe("fallback");
      expect(down.pending).toBeGreaterThan(0);
      const outageMs = Date.now() - cutAt;
      report.outageTurns = turnsNow() - turnsAtCut;
      report.outageEntriesPerS = ((run.recorder.entries - entriesAtCut) * 1000) / outageMs;

      await run.proxy.restore();
      const restoredAt = Date.now();
      const replayedAtRestore = down.replayed;
      const entriesAtRestore = run.recorder.entries;
      const turnsAtRestore = turnsNow();
      let replayingSeen = false;
      // [seconds since restore, pending, replayed, live turns]: how the drain went, if it fails.
      const progress: number[][] = [];
      const sampler = setInterval(() => {
        const s = run.fallback.status();
        const at = Math.round((Date.now() - restoredAt) / 1000);
        progress.push([at, s.pending, s.replayed - replayedAtRestore, turnsNow() - turnsAtRestore]);
      }, 2_000);
      await waitFor(
        () => {
          const s = run.fallback.status();
          if (s.replaying) replayingSeen = true;
          return s.mode === "primary" && s.pending === 0;
        },
        DRAIN_BOUND_MS,
        "the pending log to drain while traffic continues",
      )
        .catch((err: unknown) => {
          const status = JSON.stringify(run.fallback.status());
          throw new Error(`${(err as Error).message}: ${status} ${JSON.stringify(progress)}`);
        })
        .finally(() => clearInterval(sampler));
      const drainMs = Date.now() - restoredAt;
      const drained = run.fallback.status();
      report.drainMs = drainMs;
      report.replayedEntries = drained.replayed - replayedAtRestore;
      report.replayEntriesPerS = (report.replayedEntries * 1000) / drainMs;
      report.liveEntriesDuringDrain = run.recorder.entries - entriesAtRestore;
      report.liveEntriesPerSDuringDrain = (report.liveEntriesDuringDrain * 1000) / drainMs;
      report.liveTurnsDuringDrain = turnsNow() - turnsAtRestore;
      expect(replayingSeen).toBe(true);
      expect(drained).toMatchObject({ pending: 0, pendingBytes: 0, failed: 0 });
      // Everything acknowledged during the outage went through the replay.
      expect(report.replayedEntries).toBeGreaterThanOrEqual(down.pending);
      // Traffic continued while the log drained, and continues in primary mode.
      expect(report.liveTurnsDuringDrain).toBeGreaterThan(0);
      const turnsAtDrain = turnsNow();
      await sleep(AFTER_DRAIN_MS);
      stop = true;
      await traffic;
      expect(turnsNow()).toBeGreaterThan(turnsAtDrain);
      expect(run.fallback.status()).toMatchObject({ mode: "primary", pending: 0 });
    } finally {
      stop = true;
      await closeAll(run.fallback, run.pool);
    }
    console.info(
      `replay under load: ${JSON.stringify({ turns: turns.map((t) => t.done), ...report })}`,
    );
    // 0 acknowledged checkpoints lost or different, read back from Postgres by id.
    await expectAllInPostgres(withOutage.admin, withOutage.schema, run.recorder.acked);

    // ---- the same turns per thread, no outage
    const base = await open(baseline.schema);
    const baseTurns = threadIds.map(() => ({ done: 0 }));
    try {
      await base.fallback.start();
      const started = Date.now();
      await Promise.all(
        threadIds.map((id, i) =>
          converse(base.graph, id, baseTurns[i]!, (n) => n >= turns[i]!.done, 0),
        ),
      );
      // Postgres' own pace with the same threads, no pauses: what the replay competes with.
      report.primaryEntriesPerS = (base.recorder.entries * 1000) / (Date.now() - started);
      // A valid baseline never left primary mode.
      const status = base.fallback.status();
      expect(status, JSON.stringify(status)).toMatchObject({
        mode: "primary",
        pending: 0,
        transitions: 0,
      });
    } finally {
      await closeAll(base.fallback, base.pool);
    }
    expect(baseTurns.map((t) => t.done)).toEqual(turns.map((t) => t.done));
    await expectAllInPostgres(baseline.admin, baseline.schema, base.recorder.acked);

    const after = await storage(withOutage.admin, withOutage.schema);
    const without = await storage(baseline.admin, baseline.schema);
    report.rowBytesRatio = after.rows / without.rows;
    report.diskBytesRatio = after.disk / without.disk;
    console.info(
      `storage after the outage vs without: ${JSON.stringify({ ...report, after, without })}`,
    );
    expect(after.rows).toBeLessThanOrEqual(without.rows * 1.5);
    expect(after.disk).toBeLessThanOrEqual(without.disk * 1.5);
  }, 240_000);
});

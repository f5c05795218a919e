import { describe, expect, it } from "vitest";
import { PostgresCheckpointer } from "../../../src/checkpoint/index.js";
import { runCleanup } from "../../../src/cleanup/index.js";
import { chatGraph, chatTurn } from "../../helpers/graph.js";
import { backdate, countRows, cpId, seedThreads, useCleanupSchema } from "./fixtures.js";

const { pool, schema, q } = useCleanupSchema("tl_cleanup_hist");
const DAY = 86_400_000;

interface BlobSpec {
  channel: string;
  version: string;
  base?: string;
}

/**
 * A hand-built thread: checkpoint n (1-based) has the channel versions `versions(n)`, two
 * pending writes, and the given blobs exist.
 */
async function buildThread(
  threadId: string,
  ns: string,
  checkpoints: number,
  versions: (n: number) => Record<string, string>,
  blobs: BlobSpec[],
) {
  for (const b of blobs) {
    await pool.query(
      `INSERT INTO ${q}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob, delta_base)
       VALUES ($1, $2, $3, $4, $5, '\\x00', $6)`,
      [threadId, ns, b.channel, b.version, b.base ? "delta" : "json", b.base ?? null],
    );
  }
  for (let n = 1; n <= checkpoints; n++) {
    await pool.query(
      `INSERT INTO ${q}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, type, checkpoint)
       VALUES ($1, $2, $3, 'json', jsonb_build_object('id', $3::text, 'channel_versions', $4::jsonb))`,
      [threadId, ns, cpId(n), JSON.stringify(versions(n))],
    );
    await pool.query(
      `INSERT INTO ${q}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
       SELECT $1, $2, $3, 'task', i, 'messages', 'json', '\\x00' FROM generate_series(0, 1) i`,
      [threadId, ns, cpId(n)],
    );
  }
}

async function keys(
  table: "checkpoints" | "checkpoint_blobs" | "checkpoint_writes",
  threadId: string,
) {
  const column =
    table === "checkpoints"
      ? "checkpoint_ns || '/' || checkpoint_id"
      : table === "checkpoint_blobs"
        ? "checkpoint_ns || '/' || channel || '@' || version"
        : "checkpoint_ns || '/' || checkpoint_id || '#' || idx";
  const { rows } = await pool.query<{ k: string }>(
    `SELECT ${column} AS k FROM ${q}.${table} WHERE thread_id = $1 ORDER BY 1`,
    [threadId],
  );
  return rows.map((r) => r.k);
}

/** Channel `messages` alternates full values and delta chains; `config` never changes. */
async function buildMixedThread(threadId: string) {
  await buildThread(
    threadId,
    "",
    6,
    (n) => ({ messages: String(n), config: "1", scratch: String(n) }),
    [
      { channel: "messages", version: "1" },
      { channel: "messages", version: "2", base: "1" },
      { channel: "messages", version: "3", base: "2" },
      { channel: "messages", version: "4" },
      { channel: "messages", version: "5", base: "4" },
      { channel: "messages", version: "6", base: "5" },
      { channel: "config", version: "1" },
      ...[1, 2, 3, 4, 5, 6].map((n) => ({ channel: "scratch", version: String(n) })),
    ],
  );
  await buildThread(threadId, "child:1", 3, (n) => ({ messages: String(n) }), [
    { channel: "messages", version: "1" },
    { channel: "messages", version: "2" },
    { channel: "messages", version: "3" },
  ]);
}

describe("history.keepLatest pruning", () => {
  it("keeps the latest N checkpoints per namespace with their writes and every blob they reach through delta chains", async () => {
    await buildMixedThread("h-mixed");
    const result = await runCleanup(pool, { schema, ttlMs: 7 * DAY, keepLatest: 2 });
    expect(result.historyCheckpointsDeleted).toBe(5);

    expect(await keys("checkpoints", "h-mixed")).toEqual([
      `/${cpId(5)}`,
      `/${cpId(6)}`,
      `child:1/${cpId(2)}`,
      `child:1/${cpId(3)}`,
    ]);
    expect(await keys("checkpoint_writes", "h-mixed")).toEqual([
      `/${cpId(5)}#0`,
      `/${cpId(5)}#1`,
      `/${cpId(6)}#0`,
      `/${cpId(6)}#1`,
      `child:1/${cpId(2)}#0`,
      `child:1/${cpId(2)}#1`,
      `child:1/${cpId(3)}#0`,
      `child:1/${cpId(3)}#1`,
    ]);
    // messages@6 -> 5 -> 4 (full) stays; 1..3 are reachable from no kept checkpoint.
    expect(await keys("checkpoint_blobs", "h-mixed")).toEqual([
      "/config@1",
      "/messages@4",
      "/messages@5",
      "/messages@6",
      "/scratch@5",
      "/scratch@6",
      "child:1/messages@2",
      "child:1/messages@3",
    ]);
  });

  it("keeps a delta chain down to its full value even when that value belongs to a pruned checkpoint", async () => {
    // seedThreads chains messages@n to messages@(n-1) all the way down to messages@1.
    await seedThreads(pool, schema, { prefix: "h-chain-", threads: 1, checkpoints: 5 });
    await runCleanup(pool, { schema, ttlMs: 7 * DAY, keepLatest: 2 });
    expect(await keys("checkpoints", "h-chain-1")).toEqual([`/${cpId(4)}`, `/${cpId(5)}`]);
    expect(await keys("checkpoint_blobs", "h-chain-1")).toEqual([
      "/config@1",
      "/messages@1",
      "/messages@2",
      "/messages@3",
      "/messages@4",
      "/messages@5",
    ]);
    expect((await countRows(pool, schema, "h-chain-1")).writes).toBe(4);
  });

  it("leaves short threads alone, deletes expired threads whole, and walks every thread in batches", async () => {
    await seedThreads(pool, schema, { prefix: "h-short-", threads: 3, checkpoints: 2 });
    await seedThreads(pool, schema, { prefix: "h-long-", threads: 7, checkpoints: 4 });
    await seedThreads(pool, schema, { prefix: "h-old-", threads: 2, checkpoints: 4 });
    await backdate(pool, schema, "h-old-", "8 days");
    const short = await countRows(pool, schema, "h-short-");

    const preview = await runCleanup(pool, { schema, ttlMs: 7 * DAY, keepLatest: 2, dryRun: true });
    expect(preview).toMatchObject({
      threadsDeleted: 2,
      checkpointsDeleted: 8,
      historyCheckpointsDeleted: 14,
    });

    const result = await runCleanup(pool, { schema, ttlMs: 7 * DAY, keepLatest: 2, batchSize: 3 });
    expect(result).toMatchObject({
      threadsDeleted: 2,
      checkpointsDeleted: 8,
      historyCheckpointsDeleted: 14,
      complete: true,
    });
    // 1 TTL batch (short) + ceil(10 threads / 3) prune calls.
    expect(result.batches).toBe(5);
    expect(await countRows(pool, schema, "h-short-")).toEqual(short);
    expect(await countRows(pool, schema, "h-long-")).toMatchObject({
      threads: 7,
      checkpoints: 14,
      writes: 28,
    });
    expect(await countRows(pool, schema, "h-old-")).toEqual({
      threads: 0,
      checkpoints: 0,
      blobs: 0,
      writes: 0,
    });
    // A second pass finds nothing more to prune.
    expect(
      (await runCleanup(pool, { schema, ttlMs: 7 * DAY, keepLatest: 2 })).historyCheckpointsDeleted,
    ).toBe(0);
  });

  it("prune_thread_history returns a cursor and rejects keep_latest below 1", async () => {
    await seedThreads(pool, schema, { prefix: "h-cur-", threads: 3, checkpoints: 3 });
    const call = async (after: string | null) =>
      (
        await pool.query<{
          last_thread: string | null;
          threads_pruned: number;
          checkpoints_deleted: string;
        }>(`SELECT * FROM ${q}.prune_thread_history(1, 2, $1)`, [after])
      ).rows[0]!;
    expect(await call(null)).toEqual({
      last_thread: "h-cur-2",
      threads_pruned: 2,
      checkpoints_deleted: "4",
    });
    expect(await call("h-cur-2")).toEqual({
      last_thread: null,
      threads_pruned: 1,
      checkpoints_deleted: "2",
    });
    await expect(
      pool.query(`SELECT * FROM ${q}.prune_thread_history(0, 10)`),
    ).rejects.toMatchObject({
      code: "22023",
      message: expect.stringMatching(/keep_latest must be at least 1/),
    });
  });
});

/** Delta rows of a thread whose base row is not stored (a thread that no longer reads back). */
async function danglingDeltas(threadId: string): Promise<string[]> {
  const { rows } = await pool.query<{ k: string }>(
    `SELECT b.channel || '@' || b.version AS k FROM ${q}.checkpoint_blobs b
     WHERE b.thread_id = $1 AND b.delta_base IS NOT NULL
       AND NOT EXISTS (
         SELECT 1 FROM ${q}.checkpoint_blobs x
         WHERE x.thread_id = b.thread_id AND x.checkpoint_ns = b.checkpoint_ns
           AND x.channel = b.channel AND x.version = b.delta_base)`,
    [threadId],
  );
  return rows.map((r) => r.k);
}

/** The gate every put passes (migration 0010), for a delta on `messages@base`. */
async function gate(db: { query: typeof pool.query }, threadId: string, base: string) {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT ${q}.threadline_lock_for_put($1, '', ARRAY['messages'], ARRAY[$2::text],
       ARRAY[(SELECT xmin::text FROM ${q}.checkpoint_blobs
              WHERE thread_id = $1 AND checkpoint_ns = '' AND channel = 'messages' AND version = $2)]) AS ok`,
    [threadId, base],
  );
  return rows[0]!.ok;
}

describe("pruning takes the thread's write lock (migration 0015)", () => {
  it("skips a thread whose put holds the write lock, so a fork's delta never loses its base", async () => {
    // messages@2 is reachable from no kept checkpoint (keep 2: cp5, cp6 -> 6, 5, 4).
    await buildMixedThread("h-fork");
    const put = await pool.connect();
    try {
      await put.query("BEGIN");
      // A fork from cp2 passes the gate with a delta on messages@2 ...
      expect(await gate(put, "h-fork", "2")).toBe(true);
      // ... and a prune runs before that put commits.
      const { rows } = await pool.query<{ threads_pruned: number; checkpoints_deleted: string }>(
        `SELECT threads_pruned, checkpoints_deleted FROM ${q}.prune_thread_history(2, 100)`,
      );
      expect(rows[0]).toEqual({ threads_pruned: 0, checkpoints_deleted: "0" });
      await put.query(
        `INSERT INTO ${q}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob, delta_base)
         VALUES ('h-fork', '', 'messages', '7', 'delta', '\\x00', '2')`,
      );
      await put.query(
        `INSERT INTO ${q}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint)
         VALUES ('h-fork', '', $1, $2, 'json', jsonb_build_object('id', $1::text, 'channel_versions', '{"messages": "7"}'::jsonb))`,
        [cpId(7), cpId(2)],
      );
      await put.query("COMMIT");
    } catch (err) {
      await put.query("ROLLBACK");
      throw err;
    } finally {
      put.release();
    }
    expect(await danglingDeltas("h-fork")).toEqual([]);

    // The next pass trims the thread around the fork, which keeps its chain 7 -> 2 -> 1.
    const result = await runCleanup(pool, { schema, ttlMs: 7 * DAY, keepLatest: 2 });
    // cp1..cp5 of the root namespace, cp1 of child:1.
    expect(result.historyCheckpointsDeleted).toBe(6);
    expect(await keys("checkpoints", "h-fork")).toEqual([
      `/${cpId(6)}`,
      `/${cpId(7)}`,
      `child:1/${cpId(2)}`,
      `child:1/${cpId(3)}`,
    ]);
    expect(await danglingDeltas("h-fork")).toEqual([]);
    expect(await keys("checkpoint_blobs", "h-fork")).toEqual(
      expect.arrayContaining(["/messages@1", "/messages@2", "/messages@7"]),
    );
  });

  it("a put that arrives while a prune holds the thread waits for it, then finds its pruned base gone", async () => {
    await buildMixedThread("h-wait");
    const prune = await pool.connect();
    try {
      await prune.query("BEGIN");
      const { rows } = await prune.query<{ checkpoints_deleted: string }>(
        `SELECT checkpoints_deleted FROM ${q}.prune_thread_history(2, 100)`,
      );
      expect(rows[0]!.checkpoints_deleted).toBe("5");
      let settled = false;
      const waiting = gate(pool, "h-wait", "2").finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false);
      await prune.query("COMMIT");
      // Its re-check runs after the prune's commit: the saver then stores the value whole.
      expect(await waiting).toBe(false);
    } catch (err) {
      await prune.query("ROLLBACK");
      throw err;
    } finally {
      prune.release();
    }
  });
});

describe("pruning a real conversation", () => {
  it("a thread written by PostgresCheckpointer in delta storage still reads whole after its history is capped", async () => {
    const writer = new PostgresCheckpointer(pool, { schema, storage: "delta" });
    const graph = chatGraph(writer);
    for (let turn = 1; turn <= 6; turn++) await chatTurn(graph, "h-graph", `message ${turn}`);
    const deltas = await pool.query(
      `SELECT 1 FROM ${q}.checkpoint_blobs WHERE thread_id = 'h-graph' AND delta_base IS NOT NULL`,
    );
    expect(deltas.rowCount).toBeGreaterThan(0);

    const result = await runCleanup(pool, { schema, ttlMs: 7 * DAY, keepLatest: 2 });
    expect(result.historyCheckpointsDeleted).toBeGreaterThan(0);
    expect((await countRows(pool, schema, "h-graph")).checkpoints).toBe(2);

    // A fresh instance has no delta cache: it must rebuild every message from the stored chain.
    const reader = new PostgresCheckpointer(pool, { schema, storage: "delta" });
    const tuple = await reader.getTuple({
      configurable: { thread_id: "h-graph", checkpoint_ns: "" },
    });
    const messages = (tuple?.checkpoint.channel_values.messages ?? []) as Array<{
      content: unknown;
    }>;
    expect(messages).toHaveLength(12);
    expect(messages[0]?.content).toBe("message 1");
    const next = await chatTurn(chatGraph(reader), "h-graph", "message 7");
    expect(next.at(-1)?.content).toEqual(expect.stringContaining("turn 7"));
  });
});

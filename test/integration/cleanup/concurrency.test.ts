import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { runCleanup, type CleanupResult } from "../../../src/cleanup/index.js";
import { testPool } from "../../helpers/db.js";
import { backdate, countRows, seedThreads, writeCheckpoint, useCleanupSchema } from "./fixtures.js";

const { pool, schema, q } = useCleanupSchema("tl_cleanup_conc", 8);
const DAY = 86_400_000;

interface Writers {
  committed: Array<{ threadId: string; checkpointId: string }>;
  errors: unknown[];
  stop(): Promise<void>;
}

/** `count` loops writing one checkpoint at a time to a random thread of `threadIds`. */
function startWriters(threadIds: string[], count: number, tag: string): Writers {
  const state: Writers = { committed: [], errors: [], stop: () => Promise.resolve() };
  let running = true;
  let seq = 0;
  const loops = Array.from({ length: count }, async (_, w) => {
    while (running) {
      const threadId = threadIds[Math.floor(Math.random() * threadIds.length)]!;
      const checkpointId = `${tag}-${w}-${String(++seq).padStart(6, "0")}`;
      try {
        await writeCheckpoint(pool, schema, threadId, checkpointId);
        state.committed.push({ threadId, checkpointId });
      } catch (err) {
        state.errors.push(err);
      }
    }
  });
  state.stop = async () => {
    running = false;
    await Promise.all(loops);
  };
  return state;
}

async function checkpointExists(threadId: string, checkpointId: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `SELECT 1 FROM ${q}.checkpoints WHERE thread_id = $1 AND checkpoint_ns = '' AND checkpoint_id = $2`,
    [threadId, checkpointId],
  );
  return rowCount === 1;
}

/** Two sweeps, each on its own single-connection pool, started together. */
async function twoSweeps(batchSize: number): Promise<CleanupResult[]> {
  const pools = [testPool(1), testPool(1)];
  try {
    return await Promise.all(
      pools.map((p) => runCleanup(p, { schema, ttlMs: 7 * DAY, batchSize, maxRuntimeMs: 60_000 })),
    );
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
}

describe("concurrent cleanups", () => {
  it("two cleanups with writers active delete every expired thread exactly once, with 0 errors and 0 active threads lost", async () => {
    await seedThreads(pool, schema, { prefix: "exp-", threads: 600, checkpoints: 3 });
    await seedThreads(pool, schema, { prefix: "act-", threads: 40, checkpoints: 3 });
    await backdate(pool, schema, "exp-", "8 days");
    const active = Array.from({ length: 40 }, (_, i) => `act-${i + 1}`);

    const writers = startWriters(active, 4, "live");
    await sleep(50);
    const results = await twoSweeps(20);
    await sleep(50);
    await writers.stop();

    expect(writers.errors).toEqual([]);
    expect(results[0]!.threadsDeleted + results[1]!.threadsDeleted).toBe(600);
    expect(results[0]!.checkpointsDeleted + results[1]!.checkpointsDeleted).toBe(1800);
    expect(await countRows(pool, schema, "exp-")).toEqual({
      threads: 0,
      checkpoints: 0,
      blobs: 0,
      writes: 0,
    });
    const after = await countRows(pool, schema, "act-");
    expect(after.threads).toBe(40);
    expect(after.checkpoints).toBe(120 + writers.committed.length);
    expect(writers.committed.length).toBeGreaterThan(0);
  });

  it("every write committed to an expired thread while sweeps run survives them, and no thread is left half-deleted", async () => {
    await seedThreads(pool, schema, { prefix: "race-", threads: 400, checkpoints: 2 });
    await backdate(pool, schema, "race-", "8 days");
    const ids = Array.from({ length: 400 }, (_, i) => `race-${i + 1}`);

    const writers = startWriters(ids, 4, "late");
    await sleep(20);
    await twoSweeps(10);
    await writers.stop();

    expect(writers.errors).toEqual([]);
    const written = new Set(writers.committed.map((w) => w.threadId));
    for (const w of writers.committed) {
      expect(await checkpointExists(w.threadId, w.checkpointId), w.checkpointId).toBe(true);
    }
    // A thread is either gone entirely or alive with a fresh activity time.
    const { rows } = await pool.query<{
      thread_id: string;
      has_row: boolean;
      fresh: boolean | null;
    }>(
      `SELECT x.thread_id, t.thread_id IS NOT NULL AS has_row, t.last_activity > now() - interval '1 hour' AS fresh
       FROM (SELECT thread_id FROM ${q}.checkpoints UNION SELECT thread_id FROM ${q}.checkpoint_blobs
             UNION SELECT thread_id FROM ${q}.checkpoint_writes) x
       LEFT JOIN ${q}.checkpoint_threads t ON t.thread_id = x.thread_id`,
    );
    for (const row of rows) {
      expect(row, row.thread_id).toMatchObject({ has_row: true, fresh: true });
      expect(written.has(row.thread_id), row.thread_id).toBe(true);
    }
  });
});

describe("a thread written to during the sweep", () => {
  it("is skipped, with all its history, when its write is in flight as the sweep runs", async () => {
    await seedThreads(pool, schema, { prefix: "inflight-", threads: 3, checkpoints: 4 });
    await backdate(pool, schema, "inflight-", "8 days");
    const writer = await pool.connect();
    try {
      await writer.query("BEGIN");
      // The activity trigger now holds inflight-2's thread row until this transaction ends.
      await writeCheckpoint(writer, schema, "inflight-2", "cp-99999999");
      const result = await runCleanup(pool, { schema, ttlMs: 7 * DAY });
      expect(result.threadsDeleted).toBe(2);
      await writer.query("COMMIT");
    } finally {
      writer.release();
    }
    expect(await countRows(pool, schema, "inflight-2")).toMatchObject({
      threads: 1,
      checkpoints: 5,
    });
    const { rows } = await pool.query<{ fresh: boolean }>(
      `SELECT last_activity > now() - interval '1 minute' AS fresh FROM ${q}.checkpoint_threads WHERE thread_id = 'inflight-2'`,
    );
    expect(rows[0]?.fresh).toBe(true);
  });

  it("keeps the write that waited for the sweep's lock and comes back with a fresh activity time", async () => {
    await seedThreads(pool, schema, { prefix: "wait-", threads: 1, checkpoints: 4 });
    await backdate(pool, schema, "wait-", "8 days");
    const sweeper = await pool.connect();
    const writer = await pool.connect();
    try {
      await sweeper.query("BEGIN");
      const swept = await sweeper.query<{ n: number }>(
        `SELECT ${q}.cleanup_expired_threads(interval '7 days', 10) AS n`,
      );
      expect(swept.rows[0]!.n).toBe(1);
      const pid = (await writer.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!
        .pid;
      const write = writeCheckpoint(writer, schema, "wait-1", "cp-99999999");
      await waitUntilBlocked(pid);
      await sweeper.query("COMMIT");
      await write;
    } finally {
      sweeper.release();
      writer.release();
    }
    expect(await checkpointExists("wait-1", "cp-99999999")).toBe(true);
    expect(await countRows(pool, schema, "wait-1")).toEqual({
      threads: 1,
      checkpoints: 1,
      blobs: 1,
      writes: 1,
    });
    const { rows } = await pool.query<{ fresh: boolean }>(
      `SELECT last_activity > now() - interval '1 minute' AS fresh FROM ${q}.checkpoint_threads WHERE thread_id = 'wait-1'`,
    );
    expect(rows[0]?.fresh).toBe(true);
    // ... and the next sweep leaves it alone.
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY })).threadsDeleted).toBe(0);
  });

  it("is not deleted when its write committed just before the sweep", async () => {
    await seedThreads(pool, schema, { prefix: "before-", threads: 2, checkpoints: 2 });
    await backdate(pool, schema, "before-", "8 days");
    await writeCheckpoint(pool, schema, "before-1", "cp-99999999");
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY })).threadsDeleted).toBe(1);
    expect(await countRows(pool, schema, "before-1")).toMatchObject({ threads: 1, checkpoints: 3 });
  });
});

async function waitUntilBlocked(pid: number, db: pg.Pool = pool): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await db.query<{ waiting: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted) AS waiting",
      [pid],
    );
    if (rows[0]?.waiting) return;
    await sleep(10);
  }
  throw new Error(`backend ${pid} never waited for a lock`);
}

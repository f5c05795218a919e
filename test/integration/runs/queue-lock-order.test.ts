import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { RunQueue, type RunEnd } from "../../../src/runs/queue.js";
import { installedSchema, testPool } from "../../helpers/db.js";

/**
 * The run queue's lock order (decision H34): every statement that locks a thread's row and rows
 * of its runs takes the thread's first, as a create does (thread row, then the runs it
 * interrupts). Each case holds the thread's row in a transaction that then changes the run the
 * way an interrupting create does; an operation that locked the run before the thread would
 * deadlock with it (40P01, found after the holder's 100 ms deadlock_timeout). Then creates with
 * `interrupt` race the worker's statements on one thread, as two instances do.
 */

const { admin, schema } = installedSchema("tl_lockorder");
const pool = testPool(6);
const q = `"${schema}"`;
const WORKER = "host:1:lockorder";
const STALE = 60_000;

afterAll(async () => {
  await pool.end();
});

const ended: RunEnd = {
  status: "success",
  threadStatus: "idle",
  valuesText: "{}",
  interrupts: {},
};

function queue(): RunQueue {
  return new RunQueue(pool, schema);
}

async function newThread(): Promise<string> {
  const threadId = randomUUID();
  await admin.query(`INSERT INTO ${q}.agent_threads (thread_id, metadata) VALUES ($1, $2)`, [
    threadId,
    JSON.stringify({ graph_id: "agent" }),
  ]);
  return threadId;
}

async function enqueue(
  threadId: string,
  strategy: "enqueue" | "interrupt",
  claim: boolean,
): Promise<string> {
  const runId = randomUUID();
  await queue().create({
    threadId,
    runId,
    assistantId: randomUUID(),
    metadata: {},
    kwargs: {},
    strategy,
    claimBy: claim ? { workerId: WORKER, staleAfterMs: STALE } : undefined,
  });
  return runId;
}

/** Resolves once a statement on this schema waits for a lock, or once `op` has settled. */
async function waitingOrDone(op: Promise<unknown>, holder: number): Promise<void> {
  let settled = false;
  void op.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 200 && !settled; i++) {
    const { rows } = await admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
       WHERE wait_event_type = 'Lock' AND pid <> $1 AND query LIKE '%' || $2 || '%'`,
      [holder, schema],
    );
    if (Number(rows[0]!.n) > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Holds the thread's row, runs `op`, and (once `op` waits or is done) changes `runId` under the
 * thread's lock as an interrupting create does. Returns `op`'s result; throws 40P01 when `op`
 * locked the run before the thread.
 */
async function underThreadLock<T>(
  threadId: string,
  runId: string,
  change: string,
  op: () => Promise<T>,
): Promise<T> {
  const holder: pg.PoolClient = await admin.connect();
  try {
    await holder.query("BEGIN");
    await holder.query("SET LOCAL deadlock_timeout = '100ms'");
    const { rows } = await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    await holder.query(
      `UPDATE ${q}.agent_threads SET busy_run_id = busy_run_id WHERE thread_id = $1`,
      [threadId],
    );
    const pending = op();
    await waitingOrDone(pending, rows[0]!.pid);
    await holder.query(
      `UPDATE ${q}.agent_runs SET ${change} WHERE thread_id = $1 AND run_id = $2`,
      [threadId, runId],
    );
    await holder.query("COMMIT");
    return await pending;
  } catch (err) {
    await holder.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    holder.release();
  }
}

describe("every run-queue statement locks the thread before its runs", () => {
  it("heartbeat waits for the thread, then sees the cancel request", async () => {
    const threadId = await newThread();
    const runId = await enqueue(threadId, "enqueue", true);
    const seen = await underThreadLock(threadId, runId, "cancel_action = 'interrupt'", () =>
      queue().heartbeat(threadId, runId, WORKER, STALE),
    );
    expect(seen).toBe("interrupt");
  });

  it("finish waits for the thread, then ends the run", async () => {
    const threadId = await newThread();
    const runId = await enqueue(threadId, "enqueue", true);
    const result = await underThreadLock(threadId, runId, "cancel_action = 'interrupt'", () =>
      queue().finish(threadId, runId, WORKER, ended),
    );
    expect(result.ours).toBe(true);
    const { rows } = await admin.query<{ status: string }>(
      `SELECT status FROM ${q}.agent_runs WHERE thread_id = $1 AND run_id = $2`,
      [threadId, runId],
    );
    expect(rows[0]?.status).toBe("success");
  });

  it("claim waits for a thread in a create, then claims its run", async () => {
    const threadId = await newThread();
    const runId = await enqueue(threadId, "enqueue", false);
    const claimed = await underThreadLock(threadId, runId, "updated_at = now()", () =>
      queue().claim(WORKER, STALE, { threadId, runId }),
    );
    expect(claimed?.run_id).toBe(runId);
    expect(claimed?.status).toBe("running");
  });

  it("claim finds nothing when the create interrupted the pending run meanwhile", async () => {
    const threadId = await newThread();
    const runId = await enqueue(threadId, "enqueue", false);
    const claimed = await underThreadLock(threadId, runId, "status = 'interrupted'", () =>
      queue().claim(WORKER, STALE, { threadId, runId }),
    );
    expect(claimed).toBeUndefined();
    const { rows } = await admin.query<{ busy: string | null }>(
      `SELECT busy_run_id AS busy FROM ${q}.agent_threads WHERE thread_id = $1`,
      [threadId],
    );
    expect(rows[0]?.busy).toBeNull();
  });

  it("reap passes over a thread in a create, and reaps its dead run afterwards", async () => {
    const threadId = await newThread();
    const runId = await enqueue(threadId, "enqueue", true);
    await admin.query(
      `UPDATE ${q}.agent_runs SET heartbeat_at = now() - interval '1 hour' WHERE run_id = $1`,
      [runId],
    );
    const reaped = await underThreadLock(threadId, runId, "cancel_action = 'interrupt'", () =>
      queue().reap(STALE),
    );
    expect(reaped.filter((r) => r.run_id === runId)).toEqual([]);
    const later = await queue().reap(STALE);
    expect(later.filter((r) => r.run_id === runId)).toHaveLength(1);
  });

  it("a fresh heartbeat that commits first keeps the run out of the reaper", async () => {
    const threadId = await newThread();
    const runId = await enqueue(threadId, "enqueue", true);
    await admin.query(
      `UPDATE ${q}.agent_runs SET heartbeat_at = now() - interval '1 hour' WHERE run_id = $1`,
      [runId],
    );
    // The holder renews the heartbeat while the reaper's snapshot still sees it old.
    const reaped = await underThreadLock(threadId, runId, "heartbeat_at = now()", () =>
      queue().reap(STALE),
    );
    expect(reaped.filter((r) => r.run_id === runId)).toEqual([]);
    expect((await queue().reap(STALE)).filter((r) => r.run_id === runId)).toEqual([]);
  });

  it("cancel waits for the thread", async () => {
    const threadId = await newThread();
    const runId = await enqueue(threadId, "enqueue", true);
    await underThreadLock(threadId, runId, "heartbeat_at = now()", () =>
      queue().cancel(threadId, [runId], "interrupt"),
    );
    const { rows } = await admin.query<{ cancel_action: string | null }>(
      `SELECT cancel_action FROM ${q}.agent_runs WHERE run_id = $1`,
      [runId],
    );
    expect(rows[0]?.cancel_action).toBe("interrupt");
  });

  it("deleting the thread (agent_delete_thread, and the TTL sweep's trigger) takes the thread row first", async () => {
    for (const del of [
      (tid: string) => pool.query(`SELECT ${q}.agent_delete_thread($1)`, [tid]),
      (tid: string) =>
        pool.query(`DELETE FROM ${q}.checkpoint_threads WHERE thread_id = $1`, [tid]),
    ]) {
      const threadId = await newThread();
      await admin.query(
        `INSERT INTO ${q}.checkpoint_threads (thread_id, created_at, last_activity) VALUES ($1, now(), now())`,
        [threadId],
      );
      const runId = await enqueue(threadId, "enqueue", true);
      await underThreadLock(threadId, runId, "cancel_action = 'interrupt'", () => del(threadId));
      const { rows } = await admin.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM ${q}.agent_runs WHERE thread_id = $1)
              + (SELECT count(*) FROM ${q}.agent_threads WHERE thread_id = $1) AS n`,
        [threadId],
      );
      expect(Number(rows[0]!.n)).toBe(0);
    }
  });
});

describe("interrupting creates race the worker's statements on one thread", () => {
  it("no deadlock and one running run at a time over many rounds", async () => {
    const threadId = await newThread();
    let running = await enqueue(threadId, "enqueue", true);
    for (let round = 0; round < 60; round++) {
      const current = running;
      // A second instance interrupts while this one beats, ends the run and claims the next.
      const [created] = await Promise.all([
        enqueue(threadId, "interrupt", false),
        queue().heartbeat(threadId, current, WORKER, STALE),
        queue().heartbeat(threadId, current, WORKER, STALE),
        queue().finish(threadId, current, WORKER, { ...ended, status: "interrupted" }),
      ]);
      const claimed = await Promise.all([
        queue().claim(WORKER, STALE, { threadId, runId: created }),
        enqueue(threadId, "interrupt", false),
      ]);
      const next = claimed[0]?.run_id ?? (await queue().claim(WORKER, STALE))?.run_id;
      const { rows } = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${q}.agent_runs WHERE thread_id = $1 AND status = 'running'`,
        [threadId],
      );
      expect(Number(rows[0]!.n)).toBeLessThanOrEqual(1);
      if (!next) {
        // Every pending run was interrupted by the one after it: start a fresh one.
        await admin.query(
          `UPDATE ${q}.agent_runs SET status = 'interrupted' WHERE thread_id = $1 AND status IN ('pending', 'running')`,
          [threadId],
        );
        await admin.query(`UPDATE ${q}.agent_threads SET busy_run_id = NULL WHERE thread_id = $1`, [
          threadId,
        ]);
        running = await enqueue(threadId, "enqueue", true);
      } else running = next;
    }
  }, 60_000);
});

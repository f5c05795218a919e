import type pg from "pg";
import { toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { ThreadlineError } from "../errors.js";
import { RunStatements } from "./statements.js";
import type { Json, RunStatus, ThreadStatus } from "./threads.js";

/**
 * The run queue in `<schema>.agent_runs` and the run events in `threadline_run_events` (migration
 * 0013). Every statement that touches one thread filters by `thread_id`; only the claim, the
 * reaper and the retention sweep scan the queue (by their partial indexes).
 *
 * A run's states and transitions (one source of truth: the row's `status`):
 *
 *   pending --claim--> running --finish--> success | error | interrupted
 *   pending --cancel(interrupt) or a newer run's interrupt--> interrupted
 *   pending --cancel(rollback)--> deleted
 *   running --cancel--> cancel_action set; the executing worker stops the graph, then
 *           interrupt: finish(interrupted)   rollback: its checkpoints and the run are deleted
 *   running --heartbeat older than staleAfter (worker died)--> error (reap), thread freed
 *
 * The thread row mirrors it: `busy` with `busy_run_id` and a lease while a run is running (the
 * TTL sweep skips leased threads), back to idle | interrupted | error when it ends.
 *
 * LOCK_ORDER: every statement or transaction that locks a thread's row and rows of its runs
 * takes the thread's first (create, startOnFreeThread, cancel, claim, heartbeat, finish, reap,
 * and since migration 0016 the thread deletes), so no two of them can deadlock (decision H34).
 * The reaper locks threads with SKIP LOCKED (a busy thread waits for its next pass); the claim
 * waits for the thread, holding no run. Within one statement a CTE runs when a later one reads
 * it, so each run lock is taken by a step that joins (or reads) the thread's lock.
 */

/** The terminal run statuses. */
export const TERMINAL: ReadonlySet<RunStatus> = new Set([
  "success",
  "error",
  "timeout",
  "interrupted",
]);

/** The `multitask_strategy` of a new run on a thread that has one in flight. */
export type MultitaskStrategy = "reject" | "enqueue" | "interrupt" | "rollback";

/** How a cancel asks a run to stop. */
export type CancelAction = "interrupt" | "rollback";

/** A run as the Agent Server API shows it. */
export interface RunRecord {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: string;
  updated_at: string;
  status: RunStatus;
  metadata: Record<string, Json>;
  kwargs: Record<string, Json>;
  multitask_strategy: MultitaskStrategy;
}

/** A run with the columns only the service reads. */
export interface RunRow extends RunRecord {
  worker_id: string | null;
  started_at: string | null;
  ended_at: string | null;
  cancel_action: CancelAction | null;
  error: Json;
}

/** One stored SSE event of a run. */
export interface StoredEvent {
  seq: number;
  event: string;
  /** The event's data as JSON text, exactly as sent. */
  data: string;
}

/** A notification on {@link RUNS_CHANNEL}: `q` a run may be claimable, `e` events, `c` cancel, `x` ended. */
export interface RunNotice {
  schema: string;
  kind: "q" | "e" | "c" | "x";
  thread_id?: string;
  run_id?: string;
  /**
   * On `x` from a run's end: whether its thread has pending runs (now claimable). Absent on the
   * other `x` notices (and from older instances): a worker then scans the queue to be sure.
   */
  pending?: boolean;
}

/**
 * Marks the statements that scan the queue across threads (claim, reaper, retention sweep,
 * cancel by status): multi-shard by design on Citus (decision H24), unlike every other statement.
 */
export const QUEUE_SCAN = "/* threadline: queue scan */";

/** How often a claim that lost its candidate to another worker looks again. */
const CLAIM_ATTEMPTS = 5;

/** The LISTEN/NOTIFY channel of every schema (the payload names the schema). */
export const RUNS_CHANNEL = "threadline_runs";

interface DbRow {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: Date;
  updated_at: Date;
  status: RunStatus;
  metadata: Record<string, Json>;
  kwargs: Record<string, Json>;
  multitask_strategy: MultitaskStrategy;
  worker_id: string | null;
  started_at: Date | null;
  ended_at: Date | null;
  cancel_action: CancelAction | null;
  error: Json;
}

const COLUMNS = `run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, kwargs,
  multitask_strategy, worker_id, started_at, ended_at, cancel_action, error`;

function toRow(r: DbRow): RunRow {
  return {
    run_id: r.run_id,
    thread_id: r.thread_id,
    assistant_id: r.assistant_id,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    status: r.status,
    metadata: r.metadata,
    kwargs: r.kwargs,
    multitask_strategy: r.multitask_strategy,
    worker_id: r.worker_id,
    started_at: r.started_at?.toISOString() ?? null,
    ended_at: r.ended_at?.toISOString() ?? null,
    cancel_action: r.cancel_action,
    error: r.error,
  };
}

/** The API form of a run (without the service's columns). */
export function publicRun(run: RunRow): RunRecord {
  return {
    run_id: run.run_id,
    thread_id: run.thread_id,
    assistant_id: run.assistant_id,
    created_at: run.created_at,
    updated_at: run.updated_at,
    status: run.status,
    metadata: run.metadata,
    kwargs: run.kwargs,
    multitask_strategy: run.multitask_strategy,
  };
}

/** How a run ended, as {@link RunQueue.finish} records it. */
export interface RunEnd {
  status: Exclude<RunStatus, "pending" | "running">;
  threadStatus: Exclude<ThreadStatus, "busy">;
  /** The thread's values as JSON text (stored as is). */
  valuesText: string;
  interrupts: Record<string, Json>;
  error?: Json;
}

function secs(ms: number): number {
  return ms / 1000;
}

/** See the module header. */
export class RunQueue {
  private readonly s: string;
  private readonly sql: RunStatements;

  /**
   * @param options.preparedStatements named prepared statements (default true); off behind a
   *   transaction-mode pooler, like the checkpointer's option of the same name.
   */
  constructor(
    private readonly pool: pg.Pool,
    readonly schema = "public",
    options: { preparedStatements?: boolean } = {},
  ) {
    this.s = quoteSchema(schema);
    this.sql = new RunStatements(options.preparedStatements ?? true);
  }

  private async query<R extends pg.QueryResultRow>(
    what: string,
    text: string,
    values: unknown[],
    client: pg.Pool | pg.PoolClient = this.pool,
  ): Promise<pg.QueryResult<R>> {
    try {
      // Only statements of their own are named (see RunStatements).
      return await this.sql.query<R>(client, text, values, client === this.pool);
    } catch (err) {
      throw toThreadlineError(err, what);
    }
  }

  private notice(kind: RunNotice["kind"], threadId?: string, runId?: string): string {
    return JSON.stringify({
      schema: this.schema,
      kind,
      ...(threadId ? { thread_id: threadId } : {}),
      ...(runId ? { run_id: runId } : {}),
    } satisfies RunNotice);
  }

  /**
   * Enqueues a run on a thread, applying `strategy` to the thread's runs in flight, in one
   * transaction that holds the thread's row lock (so two creates on one thread are ordered, and
   * `reject` is exact): reject -> CONFLICT when a run is pending or running; enqueue -> after
   * them; interrupt / rollback -> pending runs are interrupted (rollback: deleted) and the
   * running one is asked to stop with that action. Returns the new run (`running` when
   * `claimBy` took it) and the runs asked to stop.
   */
  async create(input: {
    threadId: string;
    runId: string;
    assistantId: string;
    metadata: Record<string, Json>;
    kwargs: Record<string, Json>;
    strategy: MultitaskStrategy;
    /** Claim the run for this worker at once when the thread has nothing in flight. */
    claimBy?: { workerId: string; staleAfterMs: number } | undefined;
    /**
     * Not claimable before this many seconds from now (`after_seconds`): its `created_at` is
     * set that far ahead, and the claim only takes runs whose `created_at` has passed.
     */
    afterSeconds?: number;
  }): Promise<{ run: RunRow; cancelled: string[] }> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toThreadlineError(err, "enqueuing a run");
    }
    try {
      await client.query("BEGIN");
      // The thread's row lock orders every create on this thread. A no-op UPDATE rather than
      // FOR UPDATE: the new row version tells a concurrent startOnFreeThread that the thread
      // changed after its snapshot (it then comes here and waits for this lock).
      await this.query(
        "enqueuing a run",
        `UPDATE ${this.s}.agent_threads SET busy_run_id = busy_run_id WHERE thread_id = $1`,
        [input.threadId],
        client,
      );
      const { rows: inflight } = await this.query<{ run_id: string; status: RunStatus }>(
        "enqueuing a run",
        `SELECT run_id, status FROM ${this.s}.agent_runs
         WHERE thread_id = $1 AND status IN ('pending', 'running')`,
        [input.threadId],
        client,
      );
      const cancelled: string[] = [];
      if (inflight.length > 0) {
        if (input.strategy === "reject")
          throw new ThreadlineError(
            "CONFLICT",
            `thread ${input.threadId} is busy with another run; wait for it, or choose another multitask_strategy`,
          );
        if (input.strategy === "interrupt" || input.strategy === "rollback") {
          const ids = inflight.map((r) => r.run_id);
          await this.cancelIn(client, input.threadId, ids, input.strategy);
          cancelled.push(...ids);
        }
      }
      // Nothing in flight and a worker of this process asks: the run starts claimed, so no
      // other instance can take it between the commit and the claim.
      const claim = inflight.length === 0 ? input.claimBy : undefined;
      const { rows } = await this.query<DbRow>(
        "enqueuing a run",
        `INSERT INTO ${this.s}.agent_runs
           (thread_id, run_id, assistant_id, status, metadata, kwargs, multitask_strategy,
            created_at, updated_at, worker_id, started_at, heartbeat_at)
         VALUES ($1, $2, $3, CASE WHEN $7::text IS NULL THEN 'pending' ELSE 'running' END,
                 $4::jsonb, $5::jsonb, $6,
                 clock_timestamp() + make_interval(secs => $8::double precision),
                 clock_timestamp(), $7::text,
                 CASE WHEN $7::text IS NULL THEN NULL ELSE clock_timestamp() END,
                 CASE WHEN $7::text IS NULL THEN NULL ELSE now() END)
         RETURNING ${COLUMNS}`,
        [
          input.threadId,
          input.runId,
          input.assistantId,
          JSON.stringify(input.metadata),
          JSON.stringify(input.kwargs),
          input.strategy,
          claim?.workerId ?? null,
          input.afterSeconds ?? 0,
        ],
        client,
      );
      if (claim)
        await this.query(
          "enqueuing a run",
          `UPDATE ${this.s}.agent_threads SET status = 'busy', busy_run_id = $2,
             lease_until = now() + make_interval(secs => $3::double precision), updated_at = now()
           WHERE thread_id = $1`,
          [input.threadId, input.runId, secs(claim.staleAfterMs)],
          client,
        );
      else
        await this.query(
          "enqueuing a run",
          `SELECT pg_notify($1, $2)`,
          [RUNS_CHANNEL, this.notice("q", input.threadId, input.runId)],
          client,
        );
      await client.query("COMMIT");
      return { run: toRow(rows[0]!), cancelled };
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * The common case of a streamed or waited run, in one autocommitted statement (one round
   * trip, one commit; decision H30): when the thread exists, is `graphId`'s, and has nothing
   * pending or running, insert the run `running` for this worker and mark the thread busy,
   * returning the run and the thread's newest checkpoint id (its rollback base). Undefined when
   * the thread is busy, missing or another graph's, or when another create touched it after this
   * statement's snapshot: the caller then takes {@link create}, whose transaction's separate
   * statements see every commit.
   *
   * Why one statement is exact: a statement reads one snapshot, so a run inserted by a create
   * that committed after it began would be missed by the `NOT EXISTS`. Every create changes the
   * thread row (a version with a new xmin) before it inserts, and `FOR UPDATE` returns the newest
   * committed version (waiting for a create in flight); the snapshot's version and the locked
   * one then differ, and nothing is inserted. Two of these racing on one thread: the loser sees
   * the winner's busy row version; the unique index of running runs backs that up (23505).
   */
  async startOnFreeThread(
    input: {
      threadId: string;
      runId: string;
      assistantId: string;
      metadata: Record<string, Json>;
      kwargs: Record<string, Json>;
      strategy: MultitaskStrategy;
    },
    claim: { workerId: string; staleAfterMs: number },
    graphId: string,
  ): Promise<{ run: RunRow; base: string | null } | undefined> {
    try {
      const { rows } = await this.sql.query<DbRow & { base: string | null }>(
        this.pool,
        `WITH seen AS (
           SELECT xmin::text AS v FROM ${this.s}.agent_threads
           WHERE thread_id = $1 AND metadata ->> 'graph_id' = $9
         ), locked AS (
           SELECT xmin::text AS v FROM ${this.s}.agent_threads WHERE thread_id = $1 FOR UPDATE
         ), free AS (
           SELECT 1 FROM seen JOIN locked ON seen.v = locked.v
           WHERE NOT EXISTS (SELECT 1 FROM ${this.s}.agent_runs
                             WHERE thread_id = $1 AND status IN ('pending', 'running'))
         ), ins AS (
           INSERT INTO ${this.s}.agent_runs
             (thread_id, run_id, assistant_id, status, metadata, kwargs, multitask_strategy,
              created_at, updated_at, worker_id, started_at, heartbeat_at)
           SELECT $1, $2, $3, 'running', $4::jsonb, $5::jsonb, $6, clock_timestamp(),
                  clock_timestamp(), $7, clock_timestamp(), now()
           FROM free
           RETURNING ${COLUMNS}
         ), busy AS (
           UPDATE ${this.s}.agent_threads t SET status = 'busy', busy_run_id = ins.run_id,
             lease_until = now() + make_interval(secs => $8::double precision), updated_at = now()
           FROM ins WHERE t.thread_id = $1
         )
         SELECT ins.*, (SELECT max(checkpoint_id) FROM ${this.s}.checkpoints
                        WHERE thread_id = $1) AS base
         FROM ins`,
        [
          input.threadId,
          input.runId,
          input.assistantId,
          JSON.stringify(input.metadata),
          JSON.stringify(input.kwargs),
          input.strategy,
          claim.workerId,
          secs(claim.staleAfterMs),
          graphId,
        ],
      );
      return rows[0] ? { run: toRow(rows[0]), base: rows[0].base } : undefined;
    } catch (err) {
      // Lost a race for the thread to another claim: the transaction sorts it out.
      if ((err as { code?: string }).code === "23505") return undefined;
      throw toThreadlineError(err, "enqueuing a run");
    }
  }

  /** Pending runs end (interrupt) or go (rollback); running ones get `cancel_action`. */
  private async cancelIn(
    client: pg.Pool | pg.PoolClient,
    threadId: string,
    runIds: readonly string[],
    action: CancelAction,
  ): Promise<string[]> {
    const { rows } = await this.query<{ run_id: string; status: RunStatus }>(
      "cancelling runs",
      `WITH locked AS (
         -- The thread first, then its runs (LOCK_ORDER); a no-op inside create, which holds it.
         SELECT 1 FROM ${this.s}.agent_threads WHERE thread_id = $1 FOR NO KEY UPDATE
       ), target AS (
         SELECT run_id, status FROM ${this.s}.agent_runs
         WHERE thread_id = $1 AND run_id = ANY ($2::uuid[])
       ), ended AS (
         UPDATE ${this.s}.agent_runs r SET status = 'interrupted', ended_at = now(), updated_at = now()
         FROM locked
         WHERE r.thread_id = $1 AND r.run_id = ANY ($2::uuid[]) AND r.status = 'pending' AND $3 = 'interrupt'
       ), removed AS (
         DELETE FROM ${this.s}.agent_runs r USING locked
         WHERE r.thread_id = $1 AND r.run_id = ANY ($2::uuid[]) AND r.status = 'pending' AND $3 = 'rollback'
       ), asked AS (
         UPDATE ${this.s}.agent_runs r SET cancel_action = $3, updated_at = now()
         FROM locked
         WHERE r.thread_id = $1 AND r.run_id = ANY ($2::uuid[]) AND r.status = 'running'
       )
       SELECT run_id, status FROM target`,
      [threadId, runIds, action],
      client,
    );
    for (const r of rows) {
      if (r.status === "running" || r.status === "pending")
        await this.query(
          "cancelling runs",
          `SELECT pg_notify($1, $2)`,
          [RUNS_CHANNEL, this.notice(r.status === "running" ? "c" : "x", threadId, r.run_id)],
          client,
        );
    }
    return rows.map((r) => r.run_id);
  }

  /**
   * `POST /threads/{id}/runs/{run_id}/cancel` and `POST /runs/cancel` with a thread: NOT_FOUND
   * unless every run exists on the thread.
   */
  async cancel(threadId: string, runIds: readonly string[], action: CancelAction): Promise<void> {
    const found = await this.cancelIn(this.pool, threadId, runIds, action);
    if (found.length !== new Set(runIds).size)
      throw new ThreadlineError("NOT_FOUND", `run not found on thread ${threadId}`);
  }

  /** The in-flight runs with `status` ("pending" | "running" | "all"), for `POST /runs/cancel`. */
  async inflight(
    status: "pending" | "running" | "all",
    threadId?: string,
  ): Promise<Array<{ thread_id: string; run_id: string }>> {
    const statuses = status === "all" ? ["pending", "running"] : [status];
    // Without a thread this scans the queue's partial indexes, like the claim.
    const { rows } = await this.query<{ thread_id: string; run_id: string }>(
      "listing runs to cancel",
      `${QUEUE_SCAN} SELECT thread_id, run_id FROM ${this.s}.agent_runs
       WHERE status = ANY ($1::text[]) AND ($2::text IS NULL OR thread_id = $2)`,
      [statuses, threadId ?? null],
    );
    return rows;
  }

  /**
   * Claims the oldest pending run of a thread with no running run (one given run when
   * `target` is set), marks it running for `workerId` and its thread busy with a lease of
   * `staleAfterMs`. Undefined when nothing is claimable.
   *
   * The statement picks its candidate without a lock, then waits for the thread's row (held only
   * for a statement or a create's short transaction) before it updates the run (LOCK_ORDER).
   * Another worker that took the same candidate meanwhile leaves the UPDATE nothing to match
   * (it re-checks `pending` on the newest version): that lost race is retried with a fresh
   * snapshot, which passes over the thread now running.
   */
  async claim(
    workerId: string,
    staleAfterMs: number,
    target?: { threadId: string; runId: string },
  ): Promise<RunRow | undefined> {
    const params: unknown[] = [workerId, secs(staleAfterMs)];
    let only = "";
    if (target) {
      params.push(target.threadId, target.runId);
      only = "AND r.thread_id = $3 AND r.run_id = $4";
    }
    const text = `${QUEUE_SCAN} WITH candidate AS (
           SELECT r.thread_id, r.run_id FROM ${this.s}.agent_runs r
           JOIN ${this.s}.agent_threads t ON t.thread_id = r.thread_id
           WHERE r.status = 'pending' AND r.created_at <= now() ${only}
             AND NOT EXISTS (SELECT 1 FROM ${this.s}.agent_runs b
                             WHERE b.thread_id = r.thread_id AND b.status = 'running')
             AND NOT EXISTS (SELECT 1 FROM ${this.s}.agent_runs e
                             WHERE e.thread_id = r.thread_id AND e.status = 'pending'
                               AND (e.created_at, e.run_id) < (r.created_at, r.run_id))
           ORDER BY r.created_at, r.run_id
           LIMIT 1
           FOR NO KEY UPDATE OF t
         ), claimed AS (
           UPDATE ${this.s}.agent_runs r SET status = 'running', worker_id = $1,
             started_at = clock_timestamp(), heartbeat_at = now(), updated_at = now()
           FROM candidate c
           WHERE r.thread_id = c.thread_id AND r.run_id = c.run_id AND r.status = 'pending'
           RETURNING r.*
         ), thread AS (
           UPDATE ${this.s}.agent_threads t SET status = 'busy', busy_run_id = claimed.run_id,
             lease_until = now() + make_interval(secs => $2::double precision), updated_at = now()
           FROM claimed WHERE t.thread_id = claimed.thread_id
         )
         SELECT (SELECT count(*) FROM candidate)::int AS candidates, claimed.*
         FROM (SELECT 1) AS one LEFT JOIN claimed ON true`;
    try {
      for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
        const { rows } = await this.sql.query<
          { candidates: number } & { [K in keyof DbRow]: DbRow[K] | null }
        >(this.pool, text, params);
        const row = rows[0];
        if (row?.run_id) return toRow(row as DbRow);
        if (!row || row.candidates === 0) return undefined;
      }
      return undefined;
    } catch (err) {
      // Two claims of different runs of one thread: the unique index lets one through.
      if ((err as { code?: string }).code === "23505") return undefined;
      throw toThreadlineError(err, "claiming a run");
    }
  }

  /**
   * Renews the heartbeat of a run this worker executes (and its thread's lease). Returns the
   * run's cancel request, or `lost` when the run is no longer this worker's (reaped, deleted).
   */
  async heartbeat(
    threadId: string,
    runId: string,
    workerId: string,
    staleAfterMs: number,
  ): Promise<CancelAction | null | "lost"> {
    const { rows } = await this.query<{ cancel_action: CancelAction | null }>(
      "renewing a run heartbeat",
      `WITH locked AS (
         SELECT 1 FROM ${this.s}.agent_threads WHERE thread_id = $1 FOR NO KEY UPDATE
       ), beat AS (
         -- Through locked: the thread's lock comes before the run's (LOCK_ORDER).
         UPDATE ${this.s}.agent_runs r SET heartbeat_at = now()
         FROM locked
         WHERE r.thread_id = $1 AND r.run_id = $2 AND r.status = 'running' AND r.worker_id = $3
         RETURNING r.cancel_action
       ), lease AS (
         UPDATE ${this.s}.agent_threads
         SET lease_until = now() + make_interval(secs => $4::double precision)
         WHERE thread_id = $1 AND busy_run_id = $2 AND EXISTS (SELECT 1 FROM beat)
       )
       SELECT cancel_action FROM beat`,
      [threadId, runId, workerId, secs(staleAfterMs)],
    );
    return rows[0] ? rows[0].cancel_action : "lost";
  }

  /**
   * Ends a run this worker executes and frees its thread with the new status and values, in one
   * statement that also stores the run's last `events` (seq from `events.firstSeq`), so they and
   * the end commit together: one round trip and one commit where a separate flush took two.
   * `deleteRun` (a rollback) removes the run instead (its events with it). The end notice says
   * whether the thread has pending runs, so workers only scan the queue when there is something
   * to claim. `ours` false when the run was no longer this worker's (reaped meanwhile): nothing
   * changes.
   */
  async finish(
    threadId: string,
    runId: string,
    workerId: string,
    end: RunEnd,
    deleteRun = false,
    events: { firstSeq: number; rows: ReadonlyArray<{ event: string; data: string }> } = {
      firstSeq: 0,
      rows: [],
    },
  ): Promise<{ ours: boolean; pending: boolean }> {
    const { rows } = await this.query<{ ok: boolean; pending: boolean }>(
      "ending a run",
      `WITH seen AS (
         SELECT xmin::text AS v FROM ${this.s}.agent_threads WHERE thread_id = $1
       ), locked AS (
         SELECT xmin::text AS v FROM ${this.s}.agent_threads WHERE thread_id = $1 FOR UPDATE
       ), mine AS (
         -- Joined with locked: the run's lock is taken after the thread's (LOCK_ORDER).
         SELECT r.run_id FROM ${this.s}.agent_runs r, locked
         WHERE r.thread_id = $1 AND r.run_id = $2 AND r.status = 'running' AND r.worker_id = $3
         FOR NO KEY UPDATE OF r
       ), logged AS (
         INSERT INTO ${this.s}.threadline_run_events (thread_id, run_id, seq, event, data)
         SELECT $1, mine.run_id, $12::integer + e.ord - 1, e.event, e.data
         FROM mine, unnest($13::text[], $14::text[]) WITH ORDINALITY AS e(event, data, ord)
         WHERE NOT $9
       ), ended AS (
         UPDATE ${this.s}.agent_runs r SET status = $4, ended_at = clock_timestamp(),
           updated_at = now(), error = $8::jsonb
         FROM mine WHERE r.thread_id = $1 AND r.run_id = mine.run_id AND NOT $9
       ), removed AS (
         DELETE FROM ${this.s}.agent_runs r USING mine
         WHERE r.thread_id = $1 AND r.run_id = mine.run_id AND $9
       ), freed AS (
         UPDATE ${this.s}.agent_threads t SET status = $5, "values" = $6::jsonb,
           interrupts = $7::jsonb, busy_run_id = NULL, lease_until = NULL, updated_at = now(),
           expires_at = CASE WHEN ttl_minutes IS NULL THEN NULL
                             ELSE now() + make_interval(secs => ttl_minutes * 60) END
         FROM mine, locked WHERE t.thread_id = $1 AND t.busy_run_id = mine.run_id
       ), waiting AS (
         -- A create that committed after this statement's snapshot changed the thread row
         -- (RunQueue.create), so a newer locked version may hide a pending run: say pending.
         SELECT EXISTS (SELECT 1 FROM ${this.s}.agent_runs p
                        WHERE p.thread_id = $1 AND p.status = 'pending')
                OR (SELECT v FROM seen) IS DISTINCT FROM (SELECT v FROM locked) AS pending
       ), told AS (
         SELECT pg_notify($10, ($11::jsonb || jsonb_build_object('pending', waiting.pending))::text)
         FROM mine, waiting
       )
       SELECT EXISTS (SELECT 1 FROM mine) AS ok, (SELECT pending FROM waiting) AS pending,
              (SELECT count(*) FROM told) AS n`,
      [
        threadId,
        runId,
        workerId,
        end.status,
        end.threadStatus,
        end.valuesText,
        JSON.stringify(end.interrupts),
        end.error === undefined ? null : JSON.stringify(end.error),
        deleteRun,
        RUNS_CHANNEL,
        this.notice("x", threadId, runId),
        events.firstSeq,
        events.rows.map((e) => e.event),
        events.rows.map((e) => e.data),
      ],
    );
    return { ours: rows[0]?.ok === true, pending: rows[0]?.pending === true };
  }

  /** The thread's newest checkpoint id (any namespace), before a run starts: its rollback base. */
  async latestCheckpointId(threadId: string): Promise<string | null> {
    const { rows } = await this.query<{ id: string | null }>(
      "reading a thread's latest checkpoint",
      `SELECT max(checkpoint_id) AS id FROM ${this.s}.checkpoints WHERE thread_id = $1`,
      [threadId],
    );
    return rows[0]?.id ?? null;
  }

  /**
   * Deletes the checkpoints (and their writes) newer than `base` (checkpoint ids are
   * time-ordered UUIDv6 text), i.e. what a rolled-back run wrote (one run at a time per thread),
   * under the thread's write lock (decision X1). Blobs stay: a later delta may name one as its
   * base, as after a fork; the TTL sweep and thread deletion remove them with the thread.
   */
  async deleteCheckpointsAfter(threadId: string, base: string | null): Promise<number> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toThreadlineError(err, "rolling back a run");
    }
    try {
      await client.query("BEGIN");
      await client.query(`SELECT pg_advisory_xact_lock(1953265522, hashtext($1))`, [threadId]);
      await client.query(
        `DELETE FROM ${this.s}.checkpoint_writes w
         WHERE w.thread_id = $1 AND ($2::text IS NULL OR w.checkpoint_id > $2)`,
        [threadId, base],
      );
      const { rowCount } = await client.query(
        `DELETE FROM ${this.s}.checkpoints c
         WHERE c.thread_id = $1 AND ($2::text IS NULL OR c.checkpoint_id > $2)`,
        [threadId, base],
      );
      await client.query("COMMIT");
      return rowCount ?? 0;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw toThreadlineError(err, "rolling back a run");
    } finally {
      client.release();
    }
  }

  /**
   * Marks `error` every running run whose heartbeat is older than `staleAfterMs` (its worker
   * died) and frees its thread (status `error`). Returns the runs it ended.
   */
  async reap(staleAfterMs: number): Promise<Array<{ thread_id: string; run_id: string }>> {
    const { rows } = await this.query<{ thread_id: string; run_id: string }>(
      "ending runs of dead workers",
      `${QUEUE_SCAN} WITH dead AS (
         -- Locks the threads (skipping busy ones), so the runs' locks come after (LOCK_ORDER);
         -- the UPDATE re-checks the heartbeat on the run's newest version.
         SELECT r.thread_id, r.run_id FROM ${this.s}.agent_runs r
         JOIN ${this.s}.agent_threads t ON t.thread_id = r.thread_id
         WHERE r.status = 'running'
           AND r.heartbeat_at < now() - make_interval(secs => $1::double precision)
         LIMIT 100
         FOR NO KEY UPDATE OF t SKIP LOCKED
       ), ended AS (
         UPDATE ${this.s}.agent_runs r SET status = 'error', ended_at = clock_timestamp(),
           updated_at = now(),
           error = jsonb_build_object('error', 'WorkerLost',
             'message', 'the instance executing this run stopped answering (no heartbeat for runs.staleAfter)')
         FROM dead WHERE r.thread_id = dead.thread_id AND r.run_id = dead.run_id
           AND r.status = 'running'
           AND r.heartbeat_at < now() - make_interval(secs => $1::double precision)
         RETURNING r.thread_id, r.run_id
       ), freed AS (
         UPDATE ${this.s}.agent_threads t SET status = 'error', busy_run_id = NULL,
           lease_until = NULL, updated_at = now()
         FROM ended WHERE t.thread_id = ended.thread_id AND t.busy_run_id = ended.run_id
       )
       SELECT thread_id, run_id FROM ended`,
      [secs(staleAfterMs)],
    );
    for (const r of rows) {
      await this.appendEvents(r.thread_id, r.run_id, undefined, [
        {
          event: "error",
          data: JSON.stringify({
            error: "WorkerLost",
            message:
              "the instance executing this run stopped answering (no heartbeat for runs.staleAfter)",
          }),
        },
      ]);
      await this.notify("x", r.thread_id, r.run_id);
    }
    return rows;
  }

  /** Sends a notice on {@link RUNS_CHANNEL}. */
  async notify(kind: RunNotice["kind"], threadId?: string, runId?: string): Promise<void> {
    await this.query("notifying", `SELECT pg_notify($1, $2)`, [
      RUNS_CHANNEL,
      this.notice(kind, threadId, runId),
    ]);
  }

  /**
   * Stores events of a run (seq from `firstSeq`, or after the stored ones when undefined) and
   * notifies listeners, in one statement.
   */
  async appendEvents(
    threadId: string,
    runId: string,
    firstSeq: number | undefined,
    events: ReadonlyArray<{ event: string; data: string }>,
  ): Promise<void> {
    if (events.length === 0) return;
    await this.query(
      "storing run events",
      `WITH base AS (
         SELECT coalesce($3::integer,
           (SELECT coalesce(max(seq) + 1, 0) FROM ${this.s}.threadline_run_events
            WHERE thread_id = $1 AND run_id = $2)) AS first
       ), ins AS (
         INSERT INTO ${this.s}.threadline_run_events (thread_id, run_id, seq, event, data)
         SELECT $1, $2, base.first + e.ord - 1, e.event, e.data
         FROM base, unnest($4::text[], $5::text[]) WITH ORDINALITY AS e(event, data, ord)
         RETURNING 1
       )
       SELECT pg_notify($6, $7) FROM (SELECT count(*) FROM ins) AS n`,
      [
        threadId,
        runId,
        firstSeq ?? null,
        events.map((e) => e.event),
        events.map((e) => e.data),
        RUNS_CHANNEL,
        this.notice("e", threadId, runId),
      ],
    );
  }

  /** Events of a run after `afterSeq`, in order. */
  async readEvents(
    threadId: string,
    runId: string,
    afterSeq: number,
    limit = 500,
  ): Promise<StoredEvent[]> {
    const { rows } = await this.query<StoredEvent>(
      "reading run events",
      `SELECT seq, event, data FROM ${this.s}.threadline_run_events
       WHERE thread_id = $1 AND run_id = $2 AND seq > $3
       ORDER BY seq LIMIT $4`,
      [threadId, runId, afterSeq, limit],
    );
    return rows;
  }

  /** One run of a thread, or undefined. */
  async get(threadId: string, runId: string): Promise<RunRow | undefined> {
    const { rows } = await this.query<DbRow>(
      "reading a run",
      `SELECT ${COLUMNS} FROM ${this.s}.agent_runs WHERE thread_id = $1 AND run_id = $2`,
      [threadId, runId],
    );
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  /** `GET /threads/{id}/runs`: newest first. */
  async list(
    threadId: string,
    q: { limit: number; offset: number; status?: RunStatus },
  ): Promise<RunRow[]> {
    const { rows } = await this.query<DbRow>(
      "listing runs",
      `SELECT ${COLUMNS} FROM ${this.s}.agent_runs
       WHERE thread_id = $1 AND ($2::text IS NULL OR status = $2)
       ORDER BY created_at DESC, run_id LIMIT $3 OFFSET $4`,
      [threadId, q.status ?? null, q.limit, q.offset],
    );
    return rows.map(toRow);
  }

  /** The run a thread is executing now, or its oldest pending one. */
  async current(threadId: string): Promise<RunRow | undefined> {
    const { rows } = await this.query<DbRow>(
      "reading a thread's run",
      `SELECT ${COLUMNS} FROM ${this.s}.agent_runs
       WHERE thread_id = $1 AND status IN ('running', 'pending')
       ORDER BY status = 'running' DESC, created_at, run_id LIMIT 1`,
      [threadId],
    );
    return rows[0] ? toRow(rows[0]) : undefined;
  }

  /** The runs of a thread started after `after` (ISO time), oldest first. */
  async startedAfter(threadId: string, after: string | null): Promise<RunRow[]> {
    const { rows } = await this.query<DbRow>(
      "reading a thread's runs",
      `SELECT ${COLUMNS} FROM ${this.s}.agent_runs
       WHERE thread_id = $1 AND started_at IS NOT NULL
         AND ($2::timestamptz IS NULL OR started_at > $2::timestamptz)
       ORDER BY started_at LIMIT 20`,
      [threadId, after],
    );
    return rows.map(toRow);
  }

  /** Deletes a run that is not running (its events go by trigger). CONFLICT while it runs. */
  async delete(threadId: string, runId: string): Promise<boolean> {
    const { rows } = await this.query<{ status: RunStatus }>(
      "deleting a run",
      `WITH target AS (
         SELECT status FROM ${this.s}.agent_runs WHERE thread_id = $1 AND run_id = $2
       ), gone AS (
         DELETE FROM ${this.s}.agent_runs WHERE thread_id = $1 AND run_id = $2 AND status <> 'running'
       )
       SELECT status FROM target`,
      [threadId, runId],
    );
    const status = rows[0]?.status;
    if (status === "running")
      throw new ThreadlineError("CONFLICT", `run ${runId} is running; cancel it first`);
    return status !== undefined;
  }

  /**
   * Deletes the events of up to `batch` runs that ended more than `retentionMs` ago (bounded,
   * `SKIP LOCKED`, so several instances can sweep at once). Returns how many runs it purged.
   */
  async purgeEvents(retentionMs: number, batch = 200): Promise<number> {
    const { rowCount } = await this.query(
      "deleting old run events",
      `${QUEUE_SCAN} WITH old AS (
         SELECT thread_id, run_id FROM ${this.s}.agent_runs
         WHERE events_kept AND ended_at < now() - make_interval(secs => $1::double precision)
         LIMIT $2
         FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM ${this.s}.threadline_run_events e USING old
         WHERE e.thread_id = old.thread_id AND e.run_id = old.run_id
       )
       UPDATE ${this.s}.agent_runs r SET events_kept = false
       FROM old WHERE r.thread_id = old.thread_id AND r.run_id = old.run_id`,
      [secs(retentionMs), batch],
    );
    return rowCount ?? 0;
  }
}

import type pg from "pg";
import { toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { ThreadlineError } from "../errors.js";

/** A thread's status in the Agent Server API. */
export type ThreadStatus = "idle" | "busy" | "interrupted" | "error";

/** The final status a run leaves. */
export type RunStatus = "pending" | "running" | "success" | "error" | "timeout" | "interrupted";

/** A JSON value as stored in `jsonb`. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One row of `agent_threads`, as the API shows it. */
export interface ThreadRecord {
  thread_id: string;
  created_at: string;
  updated_at: string;
  metadata: Record<string, Json>;
  status: ThreadStatus;
  values: Json;
  interrupts: Record<string, Json>;
  /** Minutes idle before the TTL sweep deletes the thread; null follows `cleanup.ttl`. */
  ttl: number | null;
}

/** Filters of {@link ThreadStore.search} and {@link ThreadStore.count}. */
export interface ThreadQuery {
  /** Threads whose metadata contains this object (`@>`). */
  metadata?: Record<string, Json>;
  /** Threads whose latest values contain this object (`@>`). */
  values?: Record<string, Json>;
  ids?: readonly string[];
  status?: ThreadStatus;
  /** Only threads owned by this key hash (API keys configured). */
  ownerHash?: string;
}

/** Sort keys of `POST /threads/search`. */
export const THREAD_SORT_KEYS = ["thread_id", "status", "created_at", "updated_at"] as const;
export type ThreadSortKey = (typeof THREAD_SORT_KEYS)[number];

interface Row {
  thread_id: string;
  created_at: Date;
  updated_at: Date;
  metadata: Record<string, Json>;
  status: ThreadStatus;
  values: Json;
  interrupts: Record<string, Json>;
  ttl_minutes: number | null;
}

function toRecord(row: Row): ThreadRecord {
  return {
    thread_id: row.thread_id,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    metadata: row.metadata,
    status: row.status,
    values: row.values,
    interrupts: row.interrupts,
    ttl: row.ttl_minutes,
  };
}

const COLUMNS = `thread_id, created_at, updated_at, metadata, status, "values", interrupts, ttl_minutes`;

/**
 * The Agent Server's threads in `<schema>.agent_threads` (migration 0007), and the run lease that
 * marks a thread busy. Every statement on one thread filters by `thread_id`.
 *
 * Thread status moves: idle|interrupted|error --a run claimed (RunQueue)--> busy --the run
 * ends--> idle|interrupted|error. While busy, `busy_run_id` and a lease (`lease_until`, renewed
 * by the run's heartbeat) keep the TTL sweep away; see src/runs/queue.ts for the run lifecycle.
 */
export class ThreadStore {
  private readonly s: string;

  constructor(
    private readonly pool: pg.Pool,
    schema = "public",
  ) {
    this.s = quoteSchema(schema);
  }

  private async query<R extends pg.QueryResultRow>(
    what: string,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw toThreadlineError(err, what);
    }
  }

  /**
   * Creates a thread. With `ifExists: "do_nothing"` an existing thread is returned as is; with
   * `"raise"` (default) it is a CONFLICT.
   */
  async create(input: {
    threadId: string;
    metadata: Record<string, Json>;
    ttlMinutes: number | null;
    ifExists: "raise" | "do_nothing";
  }): Promise<{ thread: ThreadRecord; created: boolean }> {
    // Upsert (insert, or read the existing row) in one statement.
    const { rows } = await this.query<Row & { inserted: boolean }>(
      "creating a thread",
      `WITH ins AS (
         INSERT INTO ${this.s}.agent_threads (thread_id, metadata, ttl_minutes, expires_at)
         VALUES ($1, $2, $3::double precision,
                 CASE WHEN $3::double precision IS NULL THEN NULL
                      ELSE now() + make_interval(secs => $3::double precision * 60) END)
         ON CONFLICT (thread_id) DO NOTHING
         RETURNING ${COLUMNS}, true AS inserted
       )
       SELECT * FROM ins
       UNION ALL
       SELECT ${COLUMNS}, false AS inserted FROM ${this.s}.agent_threads WHERE thread_id = $1
       LIMIT 1`,
      [input.threadId, JSON.stringify(input.metadata), input.ttlMinutes],
    );
    const row = rows[0]!;
    if (!row.inserted && input.ifExists === "raise")
      throw new ThreadlineError("CONFLICT", `thread ${input.threadId} already exists`);
    return { thread: toRecord(row), created: row.inserted };
  }

  /** The thread, or undefined. */
  async get(threadId: string): Promise<ThreadRecord | undefined> {
    const { rows } = await this.query<Row>(
      "reading a thread",
      `SELECT ${COLUMNS} FROM ${this.s}.agent_threads WHERE thread_id = $1`,
      [threadId],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /**
   * Merges `metadata` into the thread's (top-level keys replace), and sets or clears the ttl
   * (`undefined` keeps it). Returns undefined for an unknown thread.
   */
  async patch(
    threadId: string,
    change: { metadata?: Record<string, Json>; ttlMinutes?: number | null },
  ): Promise<ThreadRecord | undefined> {
    const { rows } = await this.query<Row>(
      "updating a thread",
      `UPDATE ${this.s}.agent_threads SET
         metadata = metadata || coalesce($2::jsonb, '{}'::jsonb),
         ttl_minutes = CASE WHEN $3 THEN $4::double precision ELSE ttl_minutes END,
         expires_at = CASE WHEN $3 AND $4::double precision IS NULL THEN NULL
                           WHEN $3 THEN now() + make_interval(secs => $4::double precision * 60)
                           WHEN ttl_minutes IS NULL THEN NULL
                           ELSE now() + make_interval(secs => ttl_minutes * 60) END,
         updated_at = now()
       WHERE thread_id = $1
       RETURNING ${COLUMNS}`,
      [
        threadId,
        change.metadata ? JSON.stringify(change.metadata) : null,
        change.ttlMinutes !== undefined,
        change.ttlMinutes ?? null,
      ],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** Restarts the thread's ttl clock (any API activity on it). */
  async touch(threadId: string): Promise<void> {
    await this.query(
      "touching a thread",
      `UPDATE ${this.s}.agent_threads SET updated_at = now(),
         expires_at = CASE WHEN ttl_minutes IS NULL THEN NULL
                           ELSE now() + make_interval(secs => ttl_minutes * 60) END
       WHERE thread_id = $1`,
      [threadId],
    );
  }

  /** Stores the JSON form of the thread's latest values (after a state update). */
  async setValues(threadId: string, values: Json, status?: ThreadStatus): Promise<void> {
    await this.query(
      "recording thread values",
      `UPDATE ${this.s}.agent_threads SET "values" = $2::jsonb,
         status = CASE WHEN status = 'busy' OR $3::text IS NULL THEN status ELSE $3::text END,
         updated_at = now(),
         expires_at = CASE WHEN ttl_minutes IS NULL THEN NULL
                           ELSE now() + make_interval(secs => ttl_minutes * 60) END
       WHERE thread_id = $1`,
      [threadId, JSON.stringify(values), status ?? null],
    );
  }

  /**
   * Deletes the thread with its runs, owner and every checkpoint in one transaction
   * (`agent_delete_thread`). True when anything existed.
   */
  async delete(threadId: string): Promise<boolean> {
    const { rows } = await this.query<{ found: boolean }>(
      "deleting a thread",
      `SELECT ${this.s}.agent_delete_thread($1) AS found`,
      [threadId],
    );
    return rows[0]?.found === true;
  }

  private where(q: ThreadQuery, params: unknown[]): string {
    const clauses: string[] = [];
    if (q.metadata && Object.keys(q.metadata).length > 0) {
      params.push(JSON.stringify(q.metadata));
      clauses.push(`t.metadata @> $${params.length}::jsonb`);
    }
    if (q.values && Object.keys(q.values).length > 0) {
      params.push(JSON.stringify(q.values));
      clauses.push(`t."values" @> $${params.length}::jsonb`);
    }
    if (q.ids) {
      params.push(q.ids);
      clauses.push(`t.thread_id = ANY ($${params.length}::text[])`);
    }
    if (q.status) {
      params.push(q.status);
      clauses.push(`t.status = $${params.length}`);
    }
    if (q.ownerHash !== undefined) {
      params.push(q.ownerHash);
      clauses.push(
        `EXISTS (SELECT 1 FROM ${this.s}.thread_owners o WHERE o.thread_id = t.thread_id AND o.key_hash = $${params.length})`,
      );
    }
    return clauses.length > 0 ? `WHERE ${clauses.join(" AND ")}` : "";
  }

  /** `POST /threads/search`: filters, sort (default updated_at desc), limit/offset. */
  async search(
    q: ThreadQuery & {
      limit: number;
      offset: number;
      sortBy: ThreadSortKey;
      sortOrder: "asc" | "desc";
    },
  ): Promise<ThreadRecord[]> {
    const params: unknown[] = [];
    const where = this.where(q, params);
    // sortBy and sortOrder come from closed enums, never from raw input.
    params.push(q.limit, q.offset);
    const { rows } = await this.query<Row>(
      "searching threads",
      `SELECT ${COLUMNS} FROM ${this.s}.agent_threads t ${where}
       ORDER BY t.${q.sortBy} ${q.sortOrder === "asc" ? "ASC" : "DESC"}, t.thread_id
       LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return rows.map(toRecord);
  }

  /** `POST /threads/count`. */
  async count(q: ThreadQuery): Promise<number> {
    const params: unknown[] = [];
    const where = this.where(q, params);
    const { rows } = await this.query<{ n: string }>(
      "counting threads",
      `SELECT count(*) AS n FROM ${this.s}.agent_threads t ${where}`,
      params,
    );
    return Number(rows[0]?.n ?? 0);
  }
}

import type pg from "pg";
import { classifyDbError, toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { withRetry } from "../db/retry.js";
import type { ThreadRows } from "./serialize.js";

/** Rows actually inserted for one thread (conflicting rows already present are not counted). */
export interface InsertedCounts {
  checkpoints: number;
  writes: number;
  blobs: number;
}

function statements(schema: string) {
  const s = quoteSchema(schema);
  return {
    // Every row of the batch arrives as parallel arrays: one statement per table whatever the
    // batch size, no 65 535-parameter limit, and the statement text is the same for every batch.
    activityAt: `SELECT set_config('threadline.activity_at', '-infinity', true)`,
    // Each thread gets its own source times here; the triggers fired by the inserts below then
    // see activity '-infinity' and GREATEST keeps these values.
    threads: `INSERT INTO ${s}.checkpoint_threads AS t (thread_id, created_at, last_activity)
      SELECT u.thread_id, coalesce(u.created_at, now()), coalesce(u.last_activity, now())
      FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(thread_id, created_at, last_activity)
      ORDER BY u.thread_id
      ON CONFLICT (thread_id) DO UPDATE SET last_activity = GREATEST(t.last_activity, EXCLUDED.last_activity)`,
    // Full values only (delta_base NULL): what the official saver writes.
    blobs: `INSERT INTO ${s}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
      ON CONFLICT DO NOTHING RETURNING thread_id`,
    // DO NOTHING: an existing checkpoint is never overwritten (the official saver's upsert would).
    checkpoints: `INSERT INTO ${s}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[])
      ON CONFLICT DO NOTHING RETURNING thread_id`,
    writes: `INSERT INTO ${s}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::bytea[], $9::text[])
      ON CONFLICT DO NOTHING RETURNING thread_id`,
    journal: `INSERT INTO ${s}.threadline_import_journal AS j (thread_id, source, source_format, fingerprint, checkpoints, writes)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[])
      ON CONFLICT (thread_id) DO UPDATE SET source = EXCLUDED.source, source_format = EXCLUDED.source_format,
        fingerprint = EXCLUDED.fingerprint, checkpoints = EXCLUDED.checkpoints, writes = EXCLUDED.writes,
        imported_at = now()`,
    journalLookup: `SELECT thread_id, fingerprint FROM ${s}.threadline_import_journal WHERE thread_id = ANY($1::text[])`,
  };
}

function countBy(rows: Array<{ thread_id: string }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) out.set(r.thread_id, (out.get(r.thread_id) ?? 0) + 1);
  return out;
}

/**
 * Writes converted threads into the checkpoint tables of one schema, many threads per
 * transaction, idempotently: every insert is `ON CONFLICT DO NOTHING`, and the journal row of a
 * thread commits with its data, so a crash leaves each thread either fully imported and
 * journaled or untouched.
 */
export class ImportWriter {
  private readonly sql: ReturnType<typeof statements>;

  constructor(
    private readonly pool: pg.Pool,
    schema: string,
    private readonly source: string,
  ) {
    this.sql = statements(schema);
  }

  /**
   * Fingerprints journaled for these threads. With `tolerateMissing` (dry runs, which must not
   * create tables) an uninstalled schema reads as an empty journal.
   */
  async journaled(threadIds: string[], tolerateMissing = false): Promise<Map<string, string>> {
    if (threadIds.length === 0) return new Map();
    try {
      const { rows } = await this.pool.query<{ thread_id: string; fingerprint: string }>(
        this.sql.journalLookup,
        [threadIds],
      );
      return new Map(rows.map((r) => [r.thread_id, r.fingerprint]));
    } catch (err) {
      if (tolerateMissing && classifyDbError(err) === "SCHEMA_NOT_INSTALLED") return new Map();
      throw toThreadlineError(err, "reading the import journal");
    }
  }

  /** Writes a batch of threads in one transaction; returns what each thread actually added. */
  async write(batch: ThreadRows[]): Promise<Map<string, InsertedCounts>> {
    const sorted = [...batch].sort((a, b) =>
      a.threadId < b.threadId ? -1 : a.threadId > b.threadId ? 1 : 0,
    );
    let attempt = 0;
    // Connection losses are retried by withRetry; deadlocks with live traffic on the same threads
    // (DB_CONFLICT) are retried here. Both are safe: the transaction is all-or-nothing and every
    // insert is idempotent.
    for (;;) {
      try {
        return await withRetry(() => this.writeOnce(sorted));
      } catch (err) {
        if (++attempt < 3 && classifyDbError(err) === "DB_CONFLICT") continue;
        throw toThreadlineError(err, "writing imported threads");
      }
    }
  }

  private async writeOnce(batch: ThreadRows[]): Promise<Map<string, InsertedCounts>> {
    const blobs = batch.flatMap((t) => t.blobs.map((b) => ({ t: t.threadId, ...b })));
    const cps = batch.flatMap((t) => t.checkpoints.map((c) => ({ t: t.threadId, ...c })));
    const writes = batch.flatMap((t) => t.writes.map((w) => ({ t: t.threadId, ...w })));
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query("BEGIN");
      await client.query(this.sql.activityAt);
      await client.query(this.sql.threads, [
        batch.map((t) => t.threadId),
        batch.map((t) => t.createdAt),
        batch.map((t) => t.lastActivity),
      ]);
      const blobRes =
        blobs.length === 0
          ? { rows: [] }
          : await client.query<{ thread_id: string }>(this.sql.blobs, [
              blobs.map((b) => b.t),
              blobs.map((b) => b.ns),
              blobs.map((b) => b.channel),
              blobs.map((b) => b.version),
              blobs.map((b) => b.type),
              blobs.map((b) => b.blob),
            ]);
      const cpRes =
        cps.length === 0
          ? { rows: [] }
          : await client.query<{ thread_id: string }>(this.sql.checkpoints, [
              cps.map((c) => c.t),
              cps.map((c) => c.ns),
              cps.map((c) => c.id),
              cps.map((c) => c.parentId),
              cps.map((c) => c.checkpoint),
              cps.map((c) => c.metadata),
            ]);
      const wRes =
        writes.length === 0
          ? { rows: [] }
          : await client.query<{ thread_id: string }>(this.sql.writes, [
              writes.map((w) => w.t),
              writes.map((w) => w.ns),
              writes.map((w) => w.checkpointId),
              writes.map((w) => w.taskId),
              writes.map((w) => w.idx),
              writes.map((w) => w.channel),
              writes.map((w) => w.type),
              writes.map((w) => w.blob),
              writes.map((w) => w.taskPath),
            ]);
      await client.query(this.sql.journal, [
        batch.map((t) => t.threadId),
        batch.map(() => this.source),
        batch.map((t) => t.formats.join(",")),
        batch.map((t) => t.fingerprint),
        batch.map((t) => t.checkpoints.length),
        batch.map((t) => t.writes.length),
      ]);
      await client.query("COMMIT");
      const b = countBy(blobRes.rows);
      const c = countBy(cpRes.rows);
      const w = countBy(wRes.rows);
      return new Map(
        batch.map((t) => [
          t.threadId,
          {
            checkpoints: c.get(t.threadId) ?? 0,
            writes: w.get(t.threadId) ?? 0,
            blobs: b.get(t.threadId) ?? 0,
          },
        ]),
      );
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }
}

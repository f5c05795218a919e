import type pg from "pg";
import { classifyDbError, toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { connectGuarded } from "../db/pool.js";
import { withRetry } from "../db/retry.js";
import { CopyEncoder, copyChunks, type CopyColumn, type CopyValue } from "./copy.js";
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
    // The COPY path: rows stream into a transaction-scoped temporary table (ON COMMIT DROP, so
    // nothing outlives the transaction, also behind a transaction pooler), then one INSERT ...
    // SELECT applies the same ON CONFLICT DO NOTHING as the statements above.
    stage: {
      blobs: `CREATE TEMP TABLE tl_import_blobs (thread_id text, checkpoint_ns text, channel text, version text, type text, blob bytea) ON COMMIT DROP`,
      checkpoints: `CREATE TEMP TABLE tl_import_checkpoints (thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text, checkpoint jsonb, metadata jsonb) ON COMMIT DROP`,
      writes: `CREATE TEMP TABLE tl_import_writes (thread_id text, checkpoint_ns text, checkpoint_id text, task_id text, idx integer, channel text, type text, blob bytea, task_path text) ON COMMIT DROP`,
    },
    // The direct COPY path's target columns (same order as the staged tables').
    direct: {
      blobs: `${s}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)`,
      checkpoints: `${s}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)`,
      writes: `${s}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)`,
    },
    fromStage: {
      blobs: `INSERT INTO ${s}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
      SELECT * FROM pg_temp.tl_import_blobs ON CONFLICT DO NOTHING RETURNING thread_id`,
      checkpoints: `INSERT INTO ${s}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
      SELECT * FROM pg_temp.tl_import_checkpoints ON CONFLICT DO NOTHING RETURNING thread_id`,
      writes: `INSERT INTO ${s}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)
      SELECT * FROM pg_temp.tl_import_writes ON CONFLICT DO NOTHING RETURNING thread_id`,
    },
    journalLookup: `SELECT thread_id, fingerprint FROM ${s}.threadline_import_journal WHERE thread_id = ANY($1::text[])`,
  };
}

/** Column types of the staged tables, in column order, for the binary COPY encoding. */
const STAGE_COLUMNS: Record<"blobs" | "checkpoints" | "writes", CopyColumn[]> = {
  blobs: ["text", "text", "text", "text", "text", "bytea"],
  checkpoints: ["text", "text", "text", "text", "jsonb", "jsonb"],
  writes: ["text", "text", "text", "text", "int4", "text", "text", "bytea", "text"],
};

/**
 * Default of {@link ImportWriterOptions.copyMinRows}: below about a thousand rows one
 * `unnest` INSERT is as fast as staging with COPY (which adds a temporary table and a second
 * statement); above it COPY wins.
 */
export const DEFAULT_COPY_MIN_ROWS = 1000;

/** Options of {@link ImportWriter}. */
export interface ImportWriterOptions {
  /**
   * Rows of one table in one batch from which that table's rows are loaded with binary `COPY`
   * (straight into the table; if some are already there, into a temporary table and inserted
   * from there with the same `ON CONFLICT DO NOTHING`); smaller sets go as one array-parameter
   * INSERT. Decided as the batch fills, from the rows so far scaled to the batch's expected
   * threads ({@link WriteBatch}). Default {@link DEFAULT_COPY_MIN_ROWS}. `Infinity` never
   * uses COPY (the embedded database, where COPY FROM STDIN wedges the server).
   */
  copyMinRows?: number;
  /**
   * COPY straight into the checkpoint tables, under a savepoint, and fall back to the staged
   * COPY only when a row is already there (unique violation). Default `true`; `false` always
   * stages (the bench compares the two).
   */
  directCopy?: boolean;
}

/** SQLSTATE unique_violation: a direct COPY met a row that is already present. */
const UNIQUE_VIOLATION = "23505";

function countBy(rows: Array<{ thread_id: string }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) out.set(r.thread_id, (out.get(r.thread_id) ?? 0) + 1);
  return out;
}

type Table = "blobs" | "checkpoints" | "writes";

/**
 * One table's rows of a batch: kept as values while the table looks small (they go as one
 * array-parameter INSERT), encoded for COPY from the moment it looks large enough
 * ({@link WriteBatch}).
 */
class TableRows {
  private held: CopyValue[][] = [];
  private encoder: CopyEncoder | undefined;

  constructor(private readonly columns: readonly CopyColumn[]) {}

  get size(): number {
    return this.encoder ? this.encoder.rows : this.held.length;
  }

  get encoding(): boolean {
    return this.encoder !== undefined;
  }

  add(row: CopyValue[]): void {
    if (this.encoder) this.encoder.add(row);
    else this.held.push(row);
  }

  /** Encodes the rows held so far, and every later row as it arrives. */
  encode(): void {
    if (this.encoder) return;
    this.encoder = new CopyEncoder(this.columns);
    for (const r of this.held) this.encoder.add(r);
    this.held = [];
  }

  /** The COPY chunks (then the table goes by COPY), or undefined (then by INSERT, `values`). */
  chunks(): Buffer[] | undefined {
    return this.encoder?.finish();
  }

  get values(): CopyValue[][] {
    return this.held;
  }
}

/** What a batch holds of one thread besides its rows (journal, thread times, counts). */
interface BatchThread {
  threadId: string;
  createdAt: string | null;
  lastActivity: string | null;
  formats: string;
  fingerprint: string;
  checkpoints: number;
  blobs: number;
  writes: number;
}

/**
 * The rows of one transaction, filled a thread at a time ({@link ImportWriter.batch}). A table
 * goes by COPY when it is expected to reach `copyMinRows` rows: its rows so far, scaled to the
 * batch's expected thread count. From then on its rows are encoded as they arrive, so a converted
 * thread's strings die young and the batch holds bytes outside the JS heap until it is written
 * (held until the end of the batch, the strings of its first thousand rows outlived several
 * scavenges and were copied into the old generation; decision I17). Decided as the batch fills,
 * so a batch that ends smaller than expected may still go by COPY, which writes the same rows.
 */
export class WriteBatch {
  readonly threads: BatchThread[] = [];
  readonly tables: Record<Table, TableRows>;

  constructor(
    private readonly copyMinRows: number,
    private readonly expectedThreads: number,
  ) {
    this.tables = {
      blobs: new TableRows(STAGE_COLUMNS.blobs),
      checkpoints: new TableRows(STAGE_COLUMNS.checkpoints),
      writes: new TableRows(STAGE_COLUMNS.writes),
    };
  }

  /** Adds a converted thread. The transaction takes threads in the order they were added. */
  add(rows: ThreadRows): void {
    const t = rows.threadId;
    const { blobs, checkpoints, writes } = this.tables;
    for (const b of rows.blobs) blobs.add([t, b.ns, b.channel, b.version, b.type, b.blob]);
    for (const c of rows.checkpoints)
      checkpoints.add([t, c.ns, c.id, c.parentId, c.checkpoint, c.metadata]);
    for (const w of rows.writes)
      writes.add([t, w.ns, w.checkpointId, w.taskId, w.idx, w.channel, w.type, w.blob, w.taskPath]);
    this.threads.push({
      threadId: t,
      createdAt: rows.createdAt,
      lastActivity: rows.lastActivity,
      formats: rows.formats.join(","),
      fingerprint: rows.fingerprint,
      checkpoints: rows.checkpoints.length,
      blobs: rows.blobs.length,
      writes: rows.writes.length,
    });
    const expected = Math.max(this.expectedThreads, this.threads.length);
    for (const table of [blobs, checkpoints, writes]) {
      if (!table.encoding && (table.size * expected) / this.threads.length >= this.copyMinRows)
        table.encode();
    }
  }
}

/**
 * Writes converted threads into the checkpoint tables of one schema, many threads per
 * transaction, idempotently: every insert is `ON CONFLICT DO NOTHING`, and the journal row of a
 * thread commits with its data, so a crash leaves each thread either fully imported and
 * journaled or untouched.
 */
export class ImportWriter {
  private readonly sql: ReturnType<typeof statements>;
  private readonly copyMinRows: number;
  private readonly directCopy: boolean;

  constructor(
    private readonly pool: pg.Pool,
    schema: string,
    private readonly source: string,
    options: ImportWriterOptions = {},
  ) {
    this.sql = statements(schema);
    this.copyMinRows = Math.max(1, options.copyMinRows ?? DEFAULT_COPY_MIN_ROWS);
    this.directCopy = options.directCopy ?? true;
  }

  /**
   * Inserts one table's rows of the batch, returning how many each thread gained (`undefined`
   * when every row was inserted, which a direct COPY establishes without RETURNING rows):
   * with COPY when the batch encoded them (at least `copyMinRows`), else as one
   * array-parameter INSERT.
   */
  private async insert(
    client: pg.PoolClient,
    table: Table,
    rows: TableRows,
  ): Promise<Map<string, number> | undefined> {
    if (rows.size === 0) return new Map();
    const chunks = rows.chunks();
    if (chunks) {
      if (this.directCopy) {
        // A fresh import conflicts with nothing, so the rows go straight into the table: no
        // temporary table, no second pass, no RETURNING rows to send back. Every row then is
        // inserted, which is what RETURNING would have said. A row already present (a rerun
        // without journal, live writes to the thread) fails the COPY with a unique violation;
        // the savepoint undoes it and the same bytes go the staged way, ON CONFLICT DO NOTHING.
        await client.query("SAVEPOINT tl_import_copy");
        try {
          await copyChunks(client, this.sql.direct[table], chunks);
          await client.query("RELEASE SAVEPOINT tl_import_copy");
          return undefined;
        } catch (err) {
          if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err;
          await client.query("ROLLBACK TO SAVEPOINT tl_import_copy");
        }
      }
      await client.query(this.sql.stage[table]);
      await copyChunks(client, `pg_temp.tl_import_${table}`, chunks);
      return countBy((await client.query<{ thread_id: string }>(this.sql.fromStage[table])).rows);
    }
    // Column-major arrays for unnest(): one parameter per column whatever the row count. A bytea
    // given as text (serialized JSON) goes as its UTF-8 bytes: pg would send a string as bytea's
    // text input, where backslashes are escapes.
    const columns = STAGE_COLUMNS[table].map((type, i) =>
      rows.values.map((r) => {
        const v = r[i] ?? null;
        return type === "bytea" && typeof v === "string" ? Buffer.from(v, "utf8") : v;
      }),
    );
    return countBy((await client.query<{ thread_id: string }>(this.sql[table], columns)).rows);
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

  /**
   * An empty batch for {@link writeBatch}, filled a thread at a time; `expectedThreads` (the
   * threads it is meant to hold) decides early which tables go by COPY.
   */
  batch(expectedThreads: number): WriteBatch {
    return new WriteBatch(this.copyMinRows, expectedThreads);
  }

  /** Writes a batch of threads in one transaction; returns what each thread actually added. */
  async write(threads: ThreadRows[]): Promise<Map<string, InsertedCounts>> {
    const batch = this.batch(threads.length);
    const sorted = [...threads].sort((a, b) =>
      a.threadId < b.threadId ? -1 : a.threadId > b.threadId ? 1 : 0,
    );
    for (const t of sorted) batch.add(t);
    return this.writeBatch(batch);
  }

  /**
   * Writes a filled batch in one transaction; returns what each thread actually added. Callers
   * add threads in thread id order (as the import's batches are), so concurrent transactions
   * meet each other's rows in one order.
   */
  async writeBatch(batch: WriteBatch): Promise<Map<string, InsertedCounts>> {
    let attempt = 0;
    // Connection losses are retried by withRetry; deadlocks with live traffic on the same threads
    // (DB_CONFLICT) are retried here. Both are safe: the transaction is all-or-nothing, every
    // insert is idempotent, and the encoded rows are only read.
    for (;;) {
      try {
        return await withRetry(() => this.writeOnce(batch));
      } catch (err) {
        if (++attempt < 3 && classifyDbError(err) === "DB_CONFLICT") continue;
        throw toThreadlineError(err, "writing imported threads");
      }
    }
  }

  private async writeOnce(batch: WriteBatch): Promise<Map<string, InsertedCounts>> {
    const threads = batch.threads;
    const guarded = await connectGuarded(this.pool);
    const client = guarded.client;
    let broken = false;
    try {
      await client.query("BEGIN");
      await client.query(this.sql.activityAt);
      await client.query(this.sql.threads, [
        threads.map((t) => t.threadId),
        threads.map((t) => t.createdAt),
        threads.map((t) => t.lastActivity),
      ]);
      const b = await this.insert(client, "blobs", batch.tables.blobs);
      const c = await this.insert(client, "checkpoints", batch.tables.checkpoints);
      const w = await this.insert(client, "writes", batch.tables.writes);
      await client.query(this.sql.journal, [
        threads.map((t) => t.threadId),
        threads.map(() => this.source),
        threads.map((t) => t.formats),
        threads.map((t) => t.fingerprint),
        threads.map((t) => t.checkpoints),
        threads.map((t) => t.writes),
      ]);
      await client.query("COMMIT");
      return new Map(
        threads.map((t) => [
          t.threadId,
          {
            checkpoints: c ? (c.get(t.threadId) ?? 0) : t.checkpoints,
            writes: w ? (w.get(t.threadId) ?? 0) : t.writes,
            blobs: b ? (b.get(t.threadId) ?? 0) : t.blobs,
          },
        ]),
      );
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      guarded.release(broken);
    }
  }
}

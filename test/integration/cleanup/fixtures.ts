import type pg from "pg";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { migrate } from "../../../src/db/migrator.js";
import { quoteSchema } from "../../../src/db/identifier.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";

/**
 * A migrated schema of this test file's own, dropped after. Every test starts from empty tables:
 * a sweep deletes whatever is expired, not just its own rows.
 */
export function useCleanupSchema(
  prefix: string,
  poolSize = 4,
): { pool: pg.Pool; schema: string; q: string } {
  const pool = testPool(poolSize);
  const schema = uniqueSchema(prefix);
  const q = `"${schema}"`;
  beforeAll(async () => {
    await requirePostgres();
    await migrate(pool, { schema });
  });
  beforeEach(async () => {
    await pool.query(
      `TRUNCATE ${q}.checkpoints, ${q}.checkpoint_blobs, ${q}.checkpoint_writes, ${q}.checkpoint_threads`,
    );
  });
  afterAll(async () => {
    await dropSchema(pool, schema);
    await pool.end();
  });
  return { pool, schema, q };
}

/** Zero-padded ids sort like the savers' time-ordered UUIDv6 checkpoint ids. */
export const cpId = (n: number) => `cp-${String(n).padStart(8, "0")}`;

export interface SeedOptions {
  /** Thread ids are `${prefix}${1..threads}`. */
  prefix: string;
  threads: number;
  checkpoints: number;
  /** Pending writes per checkpoint. Default 2. */
  writes?: number;
  ns?: string;
}

/**
 * Writes threads the way a saver does, set-based: per checkpoint a `messages` delta blob chained
 * to the previous version, one shared `config` blob, and pending writes. The activity triggers
 * record the threads.
 */
export async function seedThreads(pool: pg.Pool, schema: string, o: SeedOptions): Promise<void> {
  const q = quoteSchema(schema);
  const ns = o.ns ?? "";
  await pool.query(
    `INSERT INTO ${q}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob, delta_base)
     SELECT $1 || t, $4, 'messages', c::text, CASE WHEN c = 1 THEN 'json' ELSE 'delta' END,
            convert_to('m' || c, 'UTF8'), CASE WHEN c > 1 THEN (c - 1)::text END
     FROM generate_series(1, $2::int) t, generate_series(1, $3::int) c
     UNION ALL
     SELECT $1 || t, $4, 'config', '1', 'json', convert_to('cfg', 'UTF8'), NULL
     FROM generate_series(1, $2::int) t`,
    [o.prefix, o.threads, o.checkpoints, ns],
  );
  await pool.query(
    `INSERT INTO ${q}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
     SELECT $1 || t, $4, 'cp-' || lpad(c::text, 8, '0'),
            CASE WHEN c > 1 THEN 'cp-' || lpad((c - 1)::text, 8, '0') END, 'json',
            jsonb_build_object('v', 4, 'id', 'cp-' || lpad(c::text, 8, '0'), 'ts', now(),
              'channel_versions', jsonb_build_object('messages', c::text, 'config', '1')),
            jsonb_build_object('step', c)
     FROM generate_series(1, $2::int) t, generate_series(1, $3::int) c`,
    [o.prefix, o.threads, o.checkpoints, ns],
  );
  const writes = o.writes ?? 2;
  if (writes > 0) {
    await pool.query(
      `INSERT INTO ${q}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
       SELECT $1 || t, $4, 'cp-' || lpad(c::text, 8, '0'), 'task', i, 'messages', 'json', convert_to('w', 'UTF8')
       FROM generate_series(1, $2::int) t, generate_series(1, $3::int) c, generate_series(0, $5::int - 1) i`,
      [o.prefix, o.threads, o.checkpoints, ns, writes],
    );
  }
}

/** Moves the recorded activity of threads whose id starts with `prefix` into the past. */
export async function backdate(pool: pg.Pool, schema: string, prefix: string, interval: string) {
  await pool.query(
    `UPDATE ${quoteSchema(schema)}.checkpoint_threads
     SET last_activity = now() - $2::interval, created_at = now() - $2::interval
     WHERE thread_id LIKE $1 || '%'`,
    [prefix, interval],
  );
}

export interface RowCounts {
  threads: number;
  checkpoints: number;
  blobs: number;
  writes: number;
}

/** Rows of every table for threads whose id starts with `prefix` (`""`: all). */
export async function countRows(pool: pg.Pool, schema: string, prefix = ""): Promise<RowCounts> {
  const q = quoteSchema(schema);
  const { rows } = await pool.query<Record<keyof RowCounts, string>>(
    `SELECT
       (SELECT count(*) FROM ${q}.checkpoint_threads WHERE thread_id LIKE $1 || '%') AS threads,
       (SELECT count(*) FROM ${q}.checkpoints WHERE thread_id LIKE $1 || '%') AS checkpoints,
       (SELECT count(*) FROM ${q}.checkpoint_blobs WHERE thread_id LIKE $1 || '%') AS blobs,
       (SELECT count(*) FROM ${q}.checkpoint_writes WHERE thread_id LIKE $1 || '%') AS writes`,
    [prefix],
  );
  const r = rows[0]!;
  return {
    threads: Number(r.threads),
    checkpoints: Number(r.checkpoints),
    blobs: Number(r.blobs),
    writes: Number(r.writes),
  };
}

/** One checkpoint (with its blob and a pending write) for `threadId`, as one transaction. */
export async function writeCheckpoint(
  db: pg.Pool | pg.PoolClient,
  schema: string,
  threadId: string,
  checkpointId: string,
): Promise<void> {
  const q = quoteSchema(schema);
  await db.query(
    `WITH b AS (
       INSERT INTO ${q}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
       VALUES ($1, '', 'messages', $2, 'json', convert_to($2, 'UTF8'))
       ON CONFLICT DO NOTHING
     ), c AS (
       INSERT INTO ${q}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, type, checkpoint)
       VALUES ($1, '', $2, 'json', jsonb_build_object('id', $2::text, 'channel_versions', jsonb_build_object('messages', $2::text)))
     )
     INSERT INTO ${q}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
     VALUES ($1, '', $2, 'task', 0, 'messages', 'json', convert_to('w', 'UTF8'))`,
    [threadId, checkpointId],
  );
}

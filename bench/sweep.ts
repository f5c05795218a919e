import { performance } from "node:perf_hooks";
import type pg from "pg";
import { DEFAULT_CLEANUP_PAUSE, runCleanup } from "../src/cleanup/run.js";
import { migrate } from "../src/db/migrator.js";
import { quoteSchema } from "../src/db/identifier.js";

/** Result of {@link benchSweep}; latencies in milliseconds. */
export interface SweepBenchResult {
  /** Expired checkpoints deleted per second by the sweep (with their blobs and writes). */
  checkpointsDeletedPerSec: number;
  /** p99 of one checkpoint write (blob + checkpoint + write, one statement) with no sweep. */
  writerP99Baseline: number;
  /** The same while the sweep runs. */
  writerP99During: number;
  /** writerP99During / writerP99Baseline (goal <= 2). */
  ratio: number;
  /** Extra facts for the report. */
  checkpointsDeleted: number;
  threadsDeleted: number;
  sweepMs: number;
  batchSize: number;
  pause: number;
  /** Alternating baseline / sweep windows it took to drain the backlog. */
  rounds: number;
  writesBaseline: number;
  writesDuring: number;
  writerP50Baseline: number;
  writerP50During: number;
}

export interface SweepBenchOptions {
  pool: pg.Pool;
  /** A schema used by this benchmark alone (migrated here; every expired thread in it is swept). */
  schema: string;
  /** 20k checkpoints instead of 200k. */
  quick: boolean;
  /**
   * Threads per sweep batch. Default 1000, the shipped default of cleanup.batchSize (100 with
   * `quick`, so its 1 000 threads still take several batches).
   */
  batchSize?: number;
  /** runCleanup's `pause` (throttle). Default DEFAULT_CLEANUP_PAUSE (3), as shipped. */
  pause?: number;
  log?: (line: string) => void;
}

const CHECKPOINTS_PER_THREAD = 20;
const PREFIX = "sweep-";

/**
 * The TTL sweep under load: builds >= 200k expired checkpoints (20k with `quick`) set-based,
 * then drains them with `runCleanup` in short sweep windows alternating with equally long
 * windows without a sweep, while one writer keeps inserting checkpoints for a live thread, and
 * compares the writer's p99 in both. The pool needs at least 2 connections.
 */
export async function benchSweep(opts: SweepBenchOptions): Promise<SweepBenchResult> {
  const { pool, schema } = opts;
  const log = opts.log ?? (() => undefined);
  const batchSize = opts.batchSize ?? (opts.quick ? 100 : 1000);
  const q = quoteSchema(schema);
  const total = opts.quick ? 20_000 : 200_000;
  const threads = total / CHECKPOINTS_PER_THREAD;

  await migrate(pool, { schema });
  // Leftovers of an earlier run would change the numbers.
  await pool.query(`DELETE FROM ${q}.checkpoint_threads WHERE thread_id LIKE $1 || '%'`, [PREFIX]);
  for (const table of ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]) {
    await pool.query(`DELETE FROM ${q}.${table} WHERE thread_id LIKE $1 || '%'`, [PREFIX]);
  }

  const built = performance.now();
  await build(pool, q, threads);
  await pool.query(
    `UPDATE ${q}.checkpoint_threads SET last_activity = now() - interval '30 days'
     WHERE thread_id LIKE $1 || '%'`,
    [PREFIX],
  );
  // Expired rows are old in real life: vacuumed, hint bits set, statistics current.
  await pool.query(
    `VACUUM ANALYZE ${q}.checkpoints, ${q}.checkpoint_blobs, ${q}.checkpoint_writes, ${q}.checkpoint_threads`,
  );
  log(`sweep: built ${total} expired checkpoints in ${Math.round(performance.now() - built)} ms`);

  const live = `${PREFIX}live`;
  let seq = 0;
  const writeOnce = async (): Promise<number> => {
    const id = `live-${String(++seq).padStart(9, "0")}`;
    const t0 = performance.now();
    await pool.query(
      `WITH b AS (
         INSERT INTO ${q}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
         VALUES ($1, '', 'messages', $2, 'json', $3)
       ), c AS (
         INSERT INTO ${q}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, type, checkpoint, metadata)
         VALUES ($1, '', $2, 'json', $4::jsonb, '{"source":"loop"}')
       )
       INSERT INTO ${q}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
       VALUES ($1, '', $2, 'task', 0, 'messages', 'json', $3)`,
      [live, id, PAYLOAD, JSON.stringify({ v: 4, id, channel_versions: { messages: id } })],
    );
    return performance.now() - t0;
  };

  // Warm the writer's connection and plans.
  for (let i = 0; i < 50; i++) await writeOnce();

  // Baseline and sweep windows alternate, so load from outside the benchmark (other processes on
  // the machine, checkpoints of the server) hits both sides alike.
  const windowMs = opts.quick ? 150 : 300;
  const baseline: number[] = [];
  const during: number[] = [];
  let sweepMs = 0;
  let checkpointsDeleted = 0;
  let threadsDeleted = 0;
  let rounds = 0;
  for (let drained = false; !drained; rounds++) {
    const baseEnd = performance.now() + windowMs;
    while (performance.now() < baseEnd) baseline.push(await writeOnce());

    let sweeping = true;
    const writer = (async () => {
      while (sweeping) during.push(await writeOnce());
    })();
    const started = performance.now();
    const result = await runCleanup(pool, {
      schema,
      ttlMs: 7 * 86_400_000,
      batchSize,
      maxRuntimeMs: windowMs,
      pause: opts.pause ?? DEFAULT_CLEANUP_PAUSE,
    });
    sweepMs += performance.now() - started;
    sweeping = false;
    await writer;
    checkpointsDeleted += result.checkpointsDeleted;
    threadsDeleted += result.threadsDeleted;
    drained = result.complete;
  }
  log(`sweep: ${rounds} rounds of ${windowMs} ms baseline + ${windowMs} ms sweep`);

  await pool.query(`DELETE FROM ${q}.checkpoint_threads WHERE thread_id = $1`, [live]);
  for (const table of ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]) {
    await pool.query(`DELETE FROM ${q}.${table} WHERE thread_id = $1`, [live]);
  }

  const writerP99Baseline = percentile(baseline, 99);
  const writerP99During = percentile(during, 99);
  return {
    checkpointsDeletedPerSec: checkpointsDeleted / (sweepMs / 1000),
    writerP99Baseline,
    writerP99During,
    ratio: writerP99During / writerP99Baseline,
    checkpointsDeleted,
    threadsDeleted,
    sweepMs: Math.round(sweepMs),
    batchSize,
    pause: opts.pause ?? DEFAULT_CLEANUP_PAUSE,
    rounds,
    writesBaseline: baseline.length,
    writesDuring: during.length,
    writerP50Baseline: percentile(baseline, 50),
    writerP50During: percentile(during, 50),
  };
}

/** ~300 bytes, the size of a short serialized message. */
const PAYLOAD = Buffer.from(JSON.stringify({ role: "ai", content: "x".repeat(260) }));

/**
 * Writes the expired threads like a saver would (a delta-chained `messages` blob and a pending
 * write per checkpoint, one shared `config` blob per thread), in chunks of threads so each
 * statement's trigger transition table stays moderate.
 */
async function build(pool: pg.Pool, q: string, threads: number): Promise<void> {
  const chunk = 2_000;
  for (let from = 1; from <= threads; from += chunk) {
    const to = Math.min(threads, from + chunk - 1);
    const args = [PREFIX, from, to, CHECKPOINTS_PER_THREAD, PAYLOAD];
    await pool.query(
      `INSERT INTO ${q}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob, delta_base)
       SELECT $1 || t, '', 'messages', c::text, CASE WHEN c = 1 THEN 'json' ELSE 'delta' END, $5::bytea,
              CASE WHEN c > 1 THEN (c - 1)::text END
       FROM generate_series($2::int, $3::int) t, generate_series(1, $4::int) c
       UNION ALL
       SELECT $1 || t, '', 'config', '1', 'json', $5::bytea, NULL FROM generate_series($2::int, $3::int) t`,
      args,
    );
    await pool.query(
      `INSERT INTO ${q}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
       SELECT $1 || t, '', 'cp-' || lpad(c::text, 8, '0'),
              CASE WHEN c > 1 THEN 'cp-' || lpad((c - 1)::text, 8, '0') END, 'json',
              jsonb_build_object('v', 4, 'id', 'cp-' || lpad(c::text, 8, '0'), 'ts', now(),
                'channel_versions', jsonb_build_object('messages', c::text, 'config', '1'),
                'versions_seen', jsonb_build_object('model', jsonb_build_object('messages', c::text))),
              jsonb_build_object('source', 'loop', 'step', c, 'parents', '{}'::jsonb)
       FROM generate_series($2::int, $3::int) t, generate_series(1, $4::int) c`,
      args.slice(0, 4),
    );
    await pool.query(
      `INSERT INTO ${q}.checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
       SELECT $1 || t, '', 'cp-' || lpad(c::text, 8, '0'), 'task', 0, 'messages', 'json', $5
       FROM generate_series($2::int, $3::int) t, generate_series(1, $4::int) c`,
      args,
    );
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

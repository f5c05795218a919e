import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
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
  /** writerP99During / writerP99Baseline (goal <= 1.5). */
  ratio: number;
  /**
   * The floor: the same rows (another set of threads built alike, not expired) deleted by plain
   * `DELETE ... WHERE thread_id = ANY($1)` statements, one transaction per batch of `batchSize`
   * thread ids known in advance (no selection, no locks), with the same pause and the same
   * alternating writer windows. What any sweep of these rows costs on this machine.
   */
  floor: {
    checkpointsDeleted: number;
    checkpointsDeletedPerSec: number;
    writerP99Baseline: number;
    writerP99During: number;
    ratio: number;
    /** Checkpoints per second of the batches alone, pauses left out (flat out). */
    busyPerSec: number;
  };
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
  /** 50k checkpoints instead of 1M (the floor set is a fifth of it). */
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
const FLOOR_PREFIX = "sweepfloor-";
/** A floor round after every FLOOR_EVERY sweep rounds (its set is 1 / FLOOR_EVERY as large). */
const FLOOR_EVERY = 5;

/**
 * The TTL sweep under load: builds 1M expired checkpoints (50k with `quick`) set-based,
 * then drains them with `runCleanup` in short sweep windows alternating with equally long
 * windows without a sweep, while one writer keeps inserting checkpoints for a live thread, and
 * compares the writer's p99 in both. The pool needs at least 2 connections.
 */
export async function benchSweep(opts: SweepBenchOptions): Promise<SweepBenchResult> {
  const { pool, schema } = opts;
  const log = opts.log ?? (() => undefined);
  const batchSize = opts.batchSize ?? (opts.quick ? 100 : 1000);
  const q = quoteSchema(schema);
  const total = opts.quick ? 50_000 : 1_000_000;
  const threads = total / CHECKPOINTS_PER_THREAD;

  await migrate(pool, { schema });
  // Leftovers of an earlier run would change the numbers.
  await pool.query(`DELETE FROM ${q}.checkpoint_threads WHERE thread_id LIKE $1 || '%'`, [PREFIX]);
  for (const table of ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]) {
    await pool.query(`DELETE FROM ${q}.${table} WHERE thread_id LIKE $1 || '%'`, [PREFIX]);
  }

  const built = performance.now();
  await build(pool, q, PREFIX, threads);
  await pool.query(
    `UPDATE ${q}.checkpoint_threads SET last_activity = now() - interval '30 days'
     WHERE thread_id LIKE $1 || '%'`,
    [PREFIX],
  );
  // The floor's threads: built alike, a fifth as many, and live, so the sweep leaves them alone.
  const floorThreads = Math.max(1, Math.floor(threads / FLOOR_EVERY));
  await build(pool, q, FLOOR_PREFIX, floorThreads);
  // Expired rows are old in real life: vacuumed, hint bits set, statistics current.
  await pool.query(
    `VACUUM ANALYZE ${q}.checkpoints, ${q}.checkpoint_blobs, ${q}.checkpoint_writes, ${q}.checkpoint_threads`,
  );
  log(
    `sweep: built ${total} expired checkpoints (+ ${floorThreads * CHECKPOINTS_PER_THREAD} for the floor) in ${Math.round(performance.now() - built)} ms`,
  );

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

  // Baseline and deletion windows alternate, so load from outside the benchmark (other processes
  // on the machine, checkpoints of the server) hits both sides alike; the floor's windows are
  // interleaved with the sweep's (one every FLOOR_EVERY rounds) for the same reason: a server
  // checkpoint makes every page's first delete write a full-page image, whoever deletes.
  const windowMs = opts.quick ? 150 : 300;
  const pause = opts.pause ?? DEFAULT_CLEANUP_PAUSE;
  interface Side {
    baseline: number[];
    during: number[];
    ms: number;
    checkpoints: number;
    threads: number;
    rounds: number;
  }
  const side = (): Side => ({
    baseline: [],
    during: [],
    ms: 0,
    checkpoints: 0,
    threads: 0,
    rounds: 0,
  });
  const round = async (
    w: Side,
    deleting: () => Promise<{ checkpoints: number; threads: number; complete: boolean }>,
  ): Promise<boolean> => {
    const baseEnd = performance.now() + windowMs;
    while (performance.now() < baseEnd) w.baseline.push(await writeOnce());
    let busy = true;
    const writer = (async () => {
      while (busy) w.during.push(await writeOnce());
    })();
    const started = performance.now();
    const r = await deleting().finally(() => {
      busy = false;
    });
    w.ms += performance.now() - started;
    await writer;
    w.checkpoints += r.checkpoints;
    w.threads += r.threads;
    w.rounds++;
    return r.complete;
  };

  const sweepWindow = async () => {
    const r = await runCleanup(pool, {
      schema,
      ttlMs: 7 * 86_400_000,
      batchSize,
      maxRuntimeMs: windowMs,
      pause,
    });
    return { checkpoints: r.checkpointsDeleted, threads: r.threadsDeleted, complete: r.complete };
  };
  // The floor: the same deletes with nothing else, batch by batch, paced like runCleanup.
  let next = 1;
  let floorBusyMs = 0;
  const floorWindow = async () => {
    const until = performance.now() + windowMs;
    let checkpoints = 0;
    let threadsDone = 0;
    for (let first = true; next <= floorThreads && (first || performance.now() < until);) {
      first = false;
      const ids = Array.from(
        { length: Math.min(batchSize, floorThreads - next + 1) },
        (_, i) => `${FLOOR_PREFIX}${next + i}`,
      );
      next += ids.length;
      const t0 = performance.now();
      const c = await pool.connect();
      try {
        await c.query("BEGIN");
        await c.query(`DELETE FROM ${q}.checkpoint_writes WHERE thread_id = ANY ($1)`, [ids]);
        await c.query(`DELETE FROM ${q}.checkpoint_blobs WHERE thread_id = ANY ($1)`, [ids]);
        const d = await c.query(`DELETE FROM ${q}.checkpoints WHERE thread_id = ANY ($1)`, [ids]);
        await c.query(`DELETE FROM ${q}.checkpoint_threads WHERE thread_id = ANY ($1)`, [ids]);
        await c.query("COMMIT");
        checkpoints += d.rowCount ?? 0;
        threadsDone += ids.length;
      } finally {
        c.release();
      }
      floorBusyMs += performance.now() - t0;
      // runCleanup pauses after every batch but the last one of a drained run.
      await sleep((performance.now() - t0) * pause);
    }
    return { checkpoints, threads: threadsDone, complete: next > floorThreads };
  };

  const sweep = side();
  const raw = side();
  let floorDone = false;
  for (let drained = false; !drained || !floorDone;) {
    if (!drained) drained = await round(sweep, sweepWindow);
    if (!floorDone && (drained || sweep.rounds % FLOOR_EVERY === 0))
      floorDone = await round(raw, floorWindow);
  }
  log(
    `sweep: ${sweep.rounds} rounds of ${windowMs} ms baseline + ${windowMs} ms sweep, ${raw.rounds} rounds of the floor`,
  );

  await pool.query(`DELETE FROM ${q}.checkpoint_threads WHERE thread_id = $1`, [live]);
  for (const table of ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]) {
    await pool.query(`DELETE FROM ${q}.${table} WHERE thread_id = $1`, [live]);
  }

  const writerP99Baseline = percentile(sweep.baseline, 99);
  const writerP99During = percentile(sweep.during, 99);
  const floorBase = percentile(raw.baseline, 99);
  const floorDuring = percentile(raw.during, 99);
  return {
    checkpointsDeletedPerSec: sweep.checkpoints / (sweep.ms / 1000),
    writerP99Baseline,
    writerP99During,
    ratio: writerP99During / writerP99Baseline,
    floor: {
      checkpointsDeleted: raw.checkpoints,
      checkpointsDeletedPerSec: raw.checkpoints / (raw.ms / 1000),
      writerP99Baseline: floorBase,
      writerP99During: floorDuring,
      ratio: floorDuring / floorBase,
      busyPerSec: raw.checkpoints / (floorBusyMs / 1000),
    },
    checkpointsDeleted: sweep.checkpoints,
    threadsDeleted: sweep.threads,
    sweepMs: Math.round(sweep.ms),
    batchSize,
    pause,
    rounds: sweep.rounds,
    writesBaseline: sweep.baseline.length,
    writesDuring: sweep.during.length,
    writerP50Baseline: percentile(sweep.baseline, 50),
    writerP50During: percentile(sweep.during, 50),
  };
}

/** ~300 bytes, the size of a short serialized message. */
const PAYLOAD = Buffer.from(JSON.stringify({ role: "ai", content: "x".repeat(260) }));

/**
 * Writes the expired threads like a saver would (a delta-chained `messages` blob and a pending
 * write per checkpoint, one shared `config` blob per thread), in chunks of threads so each
 * statement's trigger transition table stays moderate.
 */
async function build(pool: pg.Pool, q: string, prefix: string, threads: number): Promise<void> {
  const chunk = 2_000;
  for (let from = 1; from <= threads; from += chunk) {
    const to = Math.min(threads, from + chunk - 1);
    const args = [prefix, from, to, CHECKPOINTS_PER_THREAD, PAYLOAD];
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

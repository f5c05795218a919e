import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { toPgInterval } from "../config/duration.js";
import { classifyDbError, toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { ThreadlineError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";

/** Anything that runs a parameterized query: a `pg.Pool` or one checked-out `pg.PoolClient`. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Options of {@link runCleanup}. */
export interface CleanupOptions {
  /** Schema holding the Threadline tables. Default `public`. */
  schema?: string;
  /** Threads idle longer than this many milliseconds are deleted. Must be > 0. */
  ttlMs: number;
  /** Threads per call of the SQL function (one transaction each). Default 1000. */
  batchSize?: number;
  /**
   * Stop starting new batches after this many milliseconds; the batch in flight finishes.
   * Default 300 000 (5 min); `Infinity` for no limit.
   */
  maxRuntimeMs?: number;
  /** Count what would be deleted instead of deleting. Default false. */
  dryRun?: boolean;
  /** History cap: keep the newest N checkpoints per thread and namespace; 0 (default) = no cap. */
  keepLatest?: number;
  logger?: Logger;
  /**
   * Throttle: after each batch, pause `pause` times as long as the batch took (0, the default,
   * runs flat out; 3 keeps the sweep busy at most a quarter of the time). A sweep's WAL has to be
   * flushed before any later commit of other writers, so pausing caps the latency it adds to
   * live traffic at the cost of a longer run.
   */
  pause?: number;
  /** Aborting stops the run between batches (used by the schedule on shutdown). */
  signal?: AbortSignal;
  /** Monotonic clock in ms, for the runtime bound and `durationMs`. Default `performance.now`. */
  clock?: () => number;
}

/** What a cleanup run did (or, for a dry run, would do). */
export interface CleanupResult {
  /** Expired threads deleted. */
  threadsDeleted: number;
  /** Checkpoints of those expired threads deleted. */
  checkpointsDeleted: number;
  /** Checkpoints of live threads removed by the history cap (`keepLatest`). */
  historyCheckpointsDeleted: number;
  dryRun: boolean;
  /** Wall time of the run in milliseconds. */
  durationMs: number;
  /** Calls of the SQL functions made. */
  batches: number;
  /** False when the runtime bound or an abort stopped the run before the backlog was drained. */
  complete: boolean;
}

const DEFAULT_BATCH_SIZE = 1000;
/**
 * The throttle the schedule and the CLI use unless told otherwise: the sweep stays busy at most a
 * third of the time (see {@link CleanupOptions.pause}). Measured by `npm run bench` on 200k
 * checkpoints: 1 doubled a concurrent writer's p99; on a machine with a slow WAL flush, 3 dropped
 * to 50-60k deletes/s (writer p99 1.0-1.2x) and 2 gave 67-69k/s (writer p99 1.3-1.5x).
 */
export const DEFAULT_CLEANUP_PAUSE = 2;
const DEFAULT_MAX_RUNTIME_MS = 300_000;
/** A batch aborted by a deadlock was rolled back as a whole, so running it again is safe. */
const CONFLICT_ATTEMPTS = 4;

/** Validates and normalizes the options; throws INVALID_INPUT naming the bad value. */
function normalize(options: CleanupOptions) {
  const { ttlMs } = options;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxRuntimeMs = options.maxRuntimeMs ?? DEFAULT_MAX_RUNTIME_MS;
  const keepLatest = options.keepLatest ?? 0;
  const problems: string[] = [];
  if (!Number.isFinite(ttlMs) || ttlMs < 1) {
    problems.push(`ttl must be a positive duration, got ${String(ttlMs)} ms`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    problems.push(`batch size must be an integer >= 1, got ${String(batchSize)}`);
  }
  if (Number.isNaN(maxRuntimeMs) || maxRuntimeMs <= 0) {
    problems.push(`max runtime must be a positive duration, got ${String(maxRuntimeMs)} ms`);
  }
  if (options.pause !== undefined && !(options.pause >= 0 && Number.isFinite(options.pause))) {
    problems.push(`pause must be a finite number >= 0, got ${String(options.pause)}`);
  }
  if (!Number.isInteger(keepLatest) || keepLatest < 0) {
    problems.push(`keepLatest must be an integer >= 0, got ${String(keepLatest)}`);
  }
  if (problems.length > 0) {
    throw new ThreadlineError("INVALID_INPUT", `Invalid cleanup options: ${problems.join("; ")}`);
  }
  return {
    quoted: quoteSchema(options.schema ?? "public"),
    ttl: toPgInterval(ttlMs),
    batchSize,
    maxRuntimeMs,
    keepLatest,
  };
}

/**
 * Enforces the TTL now: calls `cleanup_expired_threads_detailed` until it returns fewer than
 * `batchSize` threads (or the runtime bound or `signal` stops it), then, with `keepLatest > 0`,
 * walks every live thread with `prune_thread_history`. Each call is its own transaction, so
 * locks are held for one batch only and concurrent runs (other instances, the CLI) share the
 * work through `SKIP LOCKED`. With `dryRun`, one `cleanup_preview` call counts what would go.
 *
 * Runs on whatever it is given: the schedule passes the client holding its advisory lock.
 *
 * @throws ThreadlineError INVALID_INPUT for bad options, SCHEMA_NOT_INSTALLED when migration
 *   0004 is missing, DB_* codes for database failures.
 */
export async function runCleanup(db: Queryable, options: CleanupOptions): Promise<CleanupResult> {
  const { quoted, ttl, batchSize, maxRuntimeMs, keepLatest } = normalize(options);
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? (() => performance.now());
  const started = clock();
  const result: CleanupResult = {
    threadsDeleted: 0,
    checkpointsDeleted: 0,
    historyCheckpointsDeleted: 0,
    dryRun: options.dryRun ?? false,
    durationMs: 0,
    batches: 0,
    complete: false,
  };
  const finish = () => {
    result.durationMs = Math.round(clock() - started);
    return result;
  };

  if (result.dryRun) {
    const { rows } = await query<{
      threads_expired: string;
      checkpoints_expired: string;
      history_checkpoints: string;
    }>(db, `SELECT * FROM ${quoted}.cleanup_preview($1::interval, $2::integer)`, [ttl, keepLatest]);
    const row = rows[0];
    result.threadsDeleted = Number(row?.threads_expired ?? 0);
    result.checkpointsDeleted = Number(row?.checkpoints_expired ?? 0);
    result.historyCheckpointsDeleted = Number(row?.history_checkpoints ?? 0);
    result.batches = 1;
    result.complete = true;
    return finish();
  }

  // The first batch always runs, so a tiny maxRuntime still makes progress.
  const mayContinue = () =>
    !options.signal?.aborted && (result.batches === 0 || clock() - started < maxRuntimeMs);

  const pause = options.pause ?? 0;
  const breathe = async (since: number) => {
    if (pause <= 0 || options.signal?.aborted) return;
    const ms = (clock() - since) * pause;
    // An abort (shutdown) cuts the pause short instead of waiting it out.
    const wait = options.signal ? sleep(ms, undefined, { signal: options.signal }) : sleep(ms);
    await wait.catch(() => undefined);
  };

  let drained = false;
  while (mayContinue()) {
    const batchStarted = clock();
    const row = await withConflictRetry(logger, () =>
      query<{ threads_deleted: number; checkpoints_deleted: string }>(
        db,
        `SELECT threads_deleted, checkpoints_deleted FROM ${quoted}.cleanup_expired_threads_detailed($1::interval, $2::integer)`,
        [ttl, batchSize],
      ),
    );
    result.batches++;
    const threads = row.rows[0]?.threads_deleted ?? 0;
    result.threadsDeleted += threads;
    result.checkpointsDeleted += Number(row.rows[0]?.checkpoints_deleted ?? 0);
    logger.debug({ threads, batch: result.batches }, "cleanup batch done");
    if (threads < batchSize) {
      drained = true;
      break;
    }
    await breathe(batchStarted);
  }

  let pruned = keepLatest === 0;
  if (drained && !pruned) {
    let after: string | null = null;
    while (mayContinue()) {
      const batchStarted = clock();
      const res = await withConflictRetry(logger, () =>
        query<{ last_thread: string | null; checkpoints_deleted: string }>(
          db,
          `SELECT last_thread, checkpoints_deleted FROM ${quoted}.prune_thread_history($1::integer, $2::integer, $3::text)`,
          [keepLatest, batchSize, after],
        ),
      );
      result.batches++;
      result.historyCheckpointsDeleted += Number(res.rows[0]?.checkpoints_deleted ?? 0);
      after = res.rows[0]?.last_thread ?? null;
      if (after === null) {
        pruned = true;
        break;
      }
      await breathe(batchStarted);
    }
  }
  result.complete = drained && pruned;
  return finish();
}

async function query<R extends pg.QueryResultRow>(
  db: Queryable,
  text: string,
  values: unknown[],
): Promise<pg.QueryResult<R>> {
  try {
    return await db.query<R>(text, values);
  } catch (err) {
    throw toThreadlineError(err, "cleanup");
  }
}

async function withConflictRetry<T>(logger: Logger, op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      // Deadlocks are possible when a writer upserts an existing row of a thread being swept
      // while waiting for that thread's row lock; Postgres aborts one side and the batch, rolled
      // back whole, can simply run again.
      if (attempt >= CONFLICT_ATTEMPTS || classifyDbError(err) !== "DB_CONFLICT") throw err;
      logger.warn({ attempt }, "cleanup batch hit a lock conflict; retrying");
      await sleep(20 * attempt);
    }
  }
}

/**
 * True when the cleanup functions of migration 0004 exist in `schema`; lets callers say
 * "run `threadline migrate`" instead of surfacing "function does not exist".
 */
export async function cleanupInstalled(db: Queryable, schema = "public"): Promise<boolean> {
  const quoted = quoteSchema(schema);
  const { rows } = await query<{ ok: boolean }>(
    db,
    "SELECT to_regprocedure($1) IS NOT NULL AS ok",
    [`${quoted}.cleanup_expired_threads_detailed(interval, integer)`],
  );
  return rows[0]?.ok === true;
}

import cron, { type Logger as CronLogger, type ScheduledTask } from "node-cron";
import type pg from "pg";
import type { Registry } from "prom-client";
import type { ThreadlineConfig } from "../config/schema.js";
import { classifyDbError, toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { ThreadlineError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";
import { createCleanupMetrics, type CleanupMetrics } from "./metrics.js";
import { DEFAULT_CLEANUP_PAUSE, runCleanup, type CleanupResult, type Queryable } from "./run.js";

/**
 * Advisory-lock namespace of the sweep (first int of the two-int key; the second is the schema's
 * hash), distinct from the migrator's, so one sweep per schema runs across all instances.
 */
export const CLEANUP_LOCK_CLASS = 0x74_6c_63_6c; // "tlcl"

/** Options of {@link startCleanupSchedule}. */
export interface CleanupScheduleOptions {
  pool: pg.Pool;
  /** Schema holding the Threadline tables. Default `public`. */
  schema?: string;
  /**
   * `config.cleanup`: `schedule` is a cron expression evaluated in UTC (5 fields, or 6 with
   * seconds first); `ttl` and `maxRuntime` are milliseconds. With `enabled: false` nothing is
   * scheduled, but `runNow()` still works.
   */
  cleanup: Pick<ThreadlineConfig["cleanup"], "schedule" | "ttl" | "batchSize" | "maxRuntime"> & {
    enabled?: boolean;
    /** Throttle: `pause` of runCleanup. Default {@link DEFAULT_CLEANUP_PAUSE} (2). */
    pause?: number;
  };
  /** `config.history`: `keepLatest > 0` also prunes older checkpoints of live threads. */
  history?: { keepLatest: number };
  logger?: Logger;
  /** Registry for the metrics when `metrics` is not given. Default: a new Registry. */
  registry?: Registry;
  /** Metrics to update; default `createCleanupMetrics(registry)`. */
  metrics?: CleanupMetrics;
}

/** What one scheduled (or `runNow`) run did. */
export type CleanupRunOutcome =
  | { status: "success"; result: CleanupResult }
  /** `locked`: another instance is sweeping; `busy`: this one still is; `stopped`: shut down. */
  | { status: "skipped"; reason: "locked" | "busy" | "stopped" }
  | { status: "failure"; error: ThreadlineError };

/** The most recent run of this instance's schedule (or `runNow`), for status pages. */
export interface CleanupLastRun {
  /** When the run ended. */
  at: Date;
  outcome: CleanupRunOutcome;
}

/** A running cleanup schedule. */
export interface CleanupSchedule {
  readonly metrics: CleanupMetrics;
  /** The last run that ended in this process; undefined before the first. */
  lastRun(): CleanupLastRun | undefined;
  /** False when `cleanup.enabled` was false: no cron task exists. */
  readonly enabled: boolean;
  /** Runs a sweep now under the same lock and bookkeeping as a scheduled one. Never rejects. */
  runNow(): Promise<CleanupRunOutcome>;
  /** True while a sweep of this instance is in progress. */
  isRunning(): boolean;
  /**
   * Stops the cron task, asks a running sweep to stop after its current batch, and resolves
   * once it has released its lock and connection. Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * Starts the TTL sweep on `cleanup.schedule` (node-cron, UTC, no overlapping runs). Each run
 * checks out ONE connection, takes a session advisory lock on it with `pg_try_advisory_lock`
 * (so across service instances only one sweeps at a time and the others skip), runs
 * {@link runCleanup} on that same connection, then unlocks and returns it. A session lock is
 * never taken through `pool.query`, which could unlock on a different connection and leak the
 * lock on the pooled one. With a one-connection pool (the embedded database: one process, no
 * other instance) the lock is skipped and batches go through the pool, so requests get the
 * connection between batches. Every run is logged and counted in the metrics.
 *
 * @throws ThreadlineError CONFIG_INVALID when the cron expression is invalid.
 */
export function startCleanupSchedule(options: CleanupScheduleOptions): CleanupSchedule {
  const { pool, cleanup } = options;
  const schema = options.schema ?? "public";
  quoteSchema(schema);
  const logger = options.logger ?? silentLogger;
  const metrics = options.metrics ?? createCleanupMetrics(options.registry);
  const enabled = cleanup.enabled ?? true;
  if (enabled && !cron.validate(cleanup.schedule)) {
    throw new ThreadlineError(
      "CONFIG_INVALID",
      `cleanup.schedule: ${JSON.stringify(cleanup.schedule)} is not a valid cron expression; use 5 fields ("*/15 * * * *") or 6 with seconds first ("0 */15 * * * *")`,
    );
  }

  const abort = new AbortController();
  let stopped = false;
  let current: Promise<CleanupRunOutcome> | undefined;
  let last: CleanupLastRun | undefined;

  async function sweep(): Promise<CleanupRunOutcome> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      return failed(toThreadlineError(err, "connecting for cleanup"));
    }
    let locked = false;
    let discard = false;
    try {
      const lock = await client.query<{ locked: boolean }>(
        "SELECT pg_try_advisory_lock($1::int, hashtext($2)) AS locked",
        [CLEANUP_LOCK_CLASS, schema],
      );
      locked = lock.rows[0]?.locked === true;
      if (!locked) {
        metrics.runs.inc({ outcome: "skipped" });
        logger.info({ schema }, "cleanup skipped: another instance is sweeping");
        return { status: "skipped", reason: "locked" };
      }
      return await sweepOn(client);
    } catch (err) {
      // A dead connection must not go back to the pool; the server drops its lock with it.
      discard = classifyDbError(err) === "DB_UNAVAILABLE";
      return failed(toThreadlineError(err, "cleanup run"));
    } finally {
      if (locked && !discard) {
        try {
          await client.query("SELECT pg_advisory_unlock($1::int, hashtext($2))", [
            CLEANUP_LOCK_CLASS,
            schema,
          ]);
        } catch {
          // Unknown lock state: destroying the connection is the only way to be sure it is gone.
          discard = true;
        }
      }
      client.release(discard);
    }
  }

  /** Runs the batches on `db` and records the run; throws what runCleanup throws. */
  async function sweepOn(db: Queryable): Promise<CleanupRunOutcome> {
    const result = await runCleanup(db, {
      schema,
      ttlMs: cleanup.ttl,
      batchSize: cleanup.batchSize,
      maxRuntimeMs: cleanup.maxRuntime,
      pause: cleanup.pause ?? DEFAULT_CLEANUP_PAUSE,
      keepLatest: options.history?.keepLatest ?? 0,
      logger,
      signal: abort.signal,
    });
    metrics.runs.inc({ outcome: "success" });
    metrics.threadsDeleted.inc(result.threadsDeleted);
    metrics.checkpointsDeleted.inc({ reason: "expired" }, result.checkpointsDeleted);
    metrics.checkpointsDeleted.inc({ reason: "history" }, result.historyCheckpointsDeleted);
    metrics.duration.observe(result.durationMs / 1000);
    metrics.lastSuccess.set(Date.now() / 1000);
    logger.info(
      {
        schema,
        threadsDeleted: result.threadsDeleted,
        checkpointsDeleted: result.checkpointsDeleted,
        historyCheckpointsDeleted: result.historyCheckpointsDeleted,
        batches: result.batches,
        complete: result.complete,
        durationMs: result.durationMs,
      },
      result.complete ? "cleanup run done" : "cleanup run stopped before the backlog was drained",
    );
    return { status: "success", result };
  }

  /**
   * A one-connection pool (the embedded database) belongs to a single process, so there is no
   * other instance to exclude, and holding its only connection for a whole run would stall every
   * request: batches go through the pool instead, letting requests in between them.
   */
  async function sweepShared(): Promise<CleanupRunOutcome> {
    try {
      return await sweepOn(pool);
    } catch (err) {
      return failed(toThreadlineError(err, "cleanup run"));
    }
  }

  function failed(error: ThreadlineError): CleanupRunOutcome {
    metrics.runs.inc({ outcome: "failure" });
    logger.error(
      { schema, err: { code: error.code, message: error.message } },
      "cleanup run failed",
    );
    return { status: "failure", error };
  }

  async function runNow(): Promise<CleanupRunOutcome> {
    if (stopped) return { status: "skipped", reason: "stopped" };
    if (current) return { status: "skipped", reason: "busy" };
    current = (pool.options.max ?? 10) <= 1 ? sweepShared() : sweep();
    try {
      const outcome = await current;
      last = { at: new Date(), outcome };
      return outcome;
    } finally {
      current = undefined;
    }
  }

  let task: ScheduledTask | undefined;
  if (enabled) {
    task = cron.schedule(cleanup.schedule, () => runNow(), {
      name: `threadline-cleanup-${schema}`,
      timezone: "UTC",
      noOverlap: true,
      logger: cronLogger(logger),
    });
    logger.info({ schema, schedule: cleanup.schedule, ttlMs: cleanup.ttl }, "cleanup scheduled");
  } else {
    logger.info({ schema }, "cleanup schedule disabled (cleanup.enabled: false)");
  }

  return {
    metrics,
    enabled,
    runNow,
    lastRun: () => last,
    isRunning: () => current !== undefined,
    async stop() {
      if (stopped) {
        await current;
        return;
      }
      stopped = true;
      if (task) {
        await task.stop();
        await task.destroy();
      }
      abort.abort();
      await current;
    },
  };
}

/** node-cron logs to the console by default; route its warnings through our logger. */
function cronLogger(logger: Logger): CronLogger {
  const text = (m: string | Error) => (typeof m === "string" ? m : m.message);
  return {
    info: (m) => logger.debug({ component: "node-cron" }, m),
    debug: (m) => logger.debug({ component: "node-cron" }, text(m)),
    warn: (m) => logger.warn({ component: "node-cron" }, m),
    error: (m, err) =>
      logger.error(
        { component: "node-cron", err: err ? { message: err.message } : undefined },
        text(m),
      ),
  };
}

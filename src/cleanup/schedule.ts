import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import cron, { type Logger as CronLogger, type ScheduledTask } from "node-cron";
import type pg from "pg";
import type { Registry } from "prom-client";
import type { ThreadlineConfig } from "../config/schema.js";
import { toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { claimRunLock, releaseRunLock, type RunLockClaim } from "../db/run-lock.js";
import { ThreadlineError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";
import { createCleanupMetrics, type CleanupMetrics } from "./metrics.js";
import { DEFAULT_CLEANUP_PAUSE, runCleanup, type CleanupResult, type Queryable } from "./run.js";

/**
 * Name of the sweep's row in `<schema>.threadline_run_locks`: one sweep per schema at a time,
 * and one per cron tick, across all instances.
 */
export const CLEANUP_LOCK_NAME = "cleanup";
/** How long a dead instance's lock outlives `maxRuntime` before another may take it over. */
const LOCK_MARGIN_MS = 120_000;

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
  /**
   * `locked`: another instance is sweeping; `taken`: another instance already swept this cron
   * tick; `busy`: this instance still is; `stopped`: shut down.
   */
  | { status: "skipped"; reason: "locked" | "taken" | "busy" | "stopped" }
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
 * first claims the `cleanup` row of `threadline_run_locks` for its cron tick (one autocommit
 * statement, see run-lock.ts): across service instances exactly one sweeps per tick and the
 * others skip, also through a transaction-mode pooler, where a session advisory lock would land
 * on a random server connection. The batches of {@link runCleanup} go through the pool (a
 * one-connection pool lets requests in between them); the lock is released at the end, and a
 * holder that died frees it after `maxRuntime` plus two minutes. Every run is logged and
 * counted in the metrics.
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

  const holder = `${hostname()}:${process.pid}:${randomUUID()}`;
  const abort = new AbortController();
  let stopped = false;
  let current: Promise<CleanupRunOutcome> | undefined;
  let last: CleanupLastRun | undefined;

  async function sweep(tick: Date | undefined): Promise<CleanupRunOutcome> {
    const lock = {
      schema,
      name: CLEANUP_LOCK_NAME,
      holder,
      // A run stops starting batches after maxRuntime; the margin covers the batch in flight.
      ttlMs: cleanup.maxRuntime + LOCK_MARGIN_MS,
      ...(tick ? { tick } : {}),
    };
    let claim: RunLockClaim;
    try {
      claim = await claimRunLock(pool, lock);
    } catch (err) {
      return failed(toThreadlineError(err, "claiming the cleanup lock"));
    }
    if (claim !== "claimed") {
      metrics.runs.inc({ outcome: "skipped" });
      logger.info(
        { schema, ...(tick ? { tick: tick.toISOString() } : {}) },
        claim === "locked"
          ? "cleanup skipped: another instance is sweeping"
          : "cleanup skipped: another instance swept this tick",
      );
      return { status: "skipped", reason: claim };
    }
    try {
      return await sweepOn(pool, tick);
    } catch (err) {
      return failed(toThreadlineError(err, "cleanup run"));
    } finally {
      // If this fails (database gone), the lock frees itself after its ttl.
      await releaseRunLock(pool, lock).catch((err: unknown) =>
        logger.warn(
          { schema, err: { message: (err as Error).message } },
          "cleanup lock not released; it expires on its own",
        ),
      );
    }
  }

  /** Runs the batches on `db` and records the run; throws what runCleanup throws. */
  async function sweepOn(db: Queryable, tick: Date | undefined): Promise<CleanupRunOutcome> {
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
        ...(tick ? { tick: tick.toISOString() } : {}),
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

  function failed(error: ThreadlineError): CleanupRunOutcome {
    metrics.runs.inc({ outcome: "failure" });
    logger.error(
      { schema, err: { code: error.code, message: error.message } },
      "cleanup run failed",
    );
    return { status: "failure", error };
  }

  async function run(tick: Date | undefined): Promise<CleanupRunOutcome> {
    if (stopped) return { status: "skipped", reason: "stopped" };
    if (current) return { status: "skipped", reason: "busy" };
    current = sweep(tick);
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
    task = cron.schedule(cleanup.schedule, (context) => run(context.date), {
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
    runNow: () => run(undefined),
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

import { Counter, Gauge, Histogram, Registry, type Metric } from "prom-client";

/** The Prometheus metrics of the cleanup schedule. */
export interface CleanupMetrics {
  registry: Registry;
  /** `threadline_cleanup_runs_total{outcome="success"|"failure"|"skipped"}`. */
  runs: Counter<"outcome">;
  /** `threadline_cleanup_threads_deleted_total`: expired threads deleted. */
  threadsDeleted: Counter;
  /** `threadline_cleanup_checkpoints_deleted_total{reason="expired"|"history"}`. */
  checkpointsDeleted: Counter<"reason">;
  /** `threadline_cleanup_duration_seconds`: wall time of runs that swept. */
  duration: Histogram;
  /** `threadline_cleanup_last_success_timestamp_seconds`: Unix time of the last successful run. */
  lastSuccess: Gauge;
}

/**
 * Registers the cleanup metrics on `registry` (default: a new Registry), or returns the ones
 * already registered there, so a schedule restarted in the same process (tests, reloads) does
 * not fail on duplicate names.
 */
export function createCleanupMetrics(registry: Registry = new Registry()): CleanupMetrics {
  const get = <M extends Metric>(name: string, make: () => M): M =>
    (registry.getSingleMetric(name) as M | undefined) ?? make();
  return {
    registry,
    runs: get(
      "threadline_cleanup_runs_total",
      () =>
        new Counter({
          name: "threadline_cleanup_runs_total",
          help: "Cleanup runs by outcome (skipped: another instance held the sweep lock)",
          labelNames: ["outcome"] as const,
          registers: [registry],
        }),
    ),
    threadsDeleted: get(
      "threadline_cleanup_threads_deleted_total",
      () =>
        new Counter({
          name: "threadline_cleanup_threads_deleted_total",
          help: "Threads deleted because they were idle longer than the TTL",
          registers: [registry],
        }),
    ),
    checkpointsDeleted: get(
      "threadline_cleanup_checkpoints_deleted_total",
      () =>
        new Counter({
          name: "threadline_cleanup_checkpoints_deleted_total",
          help: "Checkpoints deleted by cleanup (expired threads, or history beyond keepLatest)",
          labelNames: ["reason"] as const,
          registers: [registry],
        }),
    ),
    duration: get(
      "threadline_cleanup_duration_seconds",
      () =>
        new Histogram({
          name: "threadline_cleanup_duration_seconds",
          help: "Wall time of cleanup runs that held the sweep lock",
          buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900],
          registers: [registry],
        }),
    ),
    lastSuccess: get(
      "threadline_cleanup_last_success_timestamp_seconds",
      () =>
        new Gauge({
          name: "threadline_cleanup_last_success_timestamp_seconds",
          help: "Unix time of the last successful cleanup run (alert when it grows stale)",
          registers: [registry],
        }),
    ),
  };
}

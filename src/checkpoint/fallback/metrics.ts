import { Counter, Gauge, type Registry } from "prom-client";
import type { FallbackCheckpointer, FallbackStatus } from "./checkpointer.js";

/** Metric names registered by {@link registerFallbackMetrics} (with the given prefix). */
export interface FallbackMetrics {
  mode: Gauge;
  pending: Gauge;
  pendingBytes: Gauge;
  transitions: Counter;
  replayed: Counter;
  failed: Counter;
}

/**
 * Registers the fallback's state on a prom-client registry, read at scrape time:
 * `<prefix>fallback_mode` (1 in fallback, 0 in primary), `<prefix>fallback_pending_entries`,
 * `<prefix>fallback_pending_bytes`, and the counters `<prefix>fallback_transitions_total`,
 * `<prefix>fallback_replayed_total`, `<prefix>fallback_failed_total`. Default prefix
 * `threadline_`.
 */
export function registerFallbackMetrics(
  registry: Registry,
  fallback: FallbackCheckpointer,
  prefix = "threadline_",
): FallbackMetrics {
  const gauge = (name: string, help: string, read: (s: FallbackStatus) => number) =>
    new Gauge({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read(fallback.status()));
      },
    });
  const counter = (name: string, help: string, read: (s: FallbackStatus) => number) =>
    new Counter({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        // The source of truth is the checkpointer's own monotonic count.
        this.reset();
        this.inc(read(fallback.status()));
      },
    });
  return {
    mode: gauge(
      "fallback_mode",
      "1 while checkpoints are served from memory (Postgres unreachable), else 0",
      (s) => (s.mode === "fallback" ? 1 : 0),
    ),
    pending: gauge(
      "fallback_pending_entries",
      "Checkpoints, writes and deletes held in memory, not yet in Postgres",
      (s) => s.pending,
    ),
    pendingBytes: gauge(
      "fallback_pending_bytes",
      "Serialized bytes held in memory, not yet in Postgres",
      (s) => s.pendingBytes,
    ),
    transitions: counter(
      "fallback_transitions_total",
      "Mode changes between primary and fallback",
      (s) => s.transitions,
    ),
    replayed: counter(
      "fallback_replayed_total",
      "Entries replayed to Postgres after an outage",
      (s) => s.replayed,
    ),
    failed: counter(
      "fallback_failed_total",
      "Entries Postgres refused during replay for a reason other than reachability",
      (s) => s.failed,
    ),
  };
}

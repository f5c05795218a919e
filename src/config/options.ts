import type { FallbackCheckpointerOptions } from "../checkpoint/fallback/checkpointer.js";
import type { PostgresCheckpointerOptions } from "../checkpoint/postgres/saver.js";
import type { CleanupOptions } from "../cleanup/run.js";
import type { ThreadlineConfig } from "./schema.js";

/*
 * The one place where the validated config becomes library options. `Required<Omit<...>>`
 * makes an option added to a library interface a type error here until it is mapped from a
 * config key (or listed as wiring: objects the caller passes in, never a user's setting).
 */

/** Options of `PostgresCheckpointer` that are wiring, not settings. */
export type PostgresWiring = "serde" | "logger";
/** Every user-tunable option of `PostgresCheckpointer`, all set from config. */
export type PostgresTunedOptions = Required<Omit<PostgresCheckpointerOptions, PostgresWiring>>;

/** Options of `FallbackCheckpointer` that are wiring (callbacks, logger), not settings. */
export type FallbackWiring = "probe" | "setup" | "logger" | "onModeChange";
/** Every user-tunable option of `FallbackCheckpointer`, all set from config. */
export type FallbackTunedOptions = Required<Omit<FallbackCheckpointerOptions, FallbackWiring>>;

/** Options of `runCleanup` that are wiring or per-run choices, not settings. */
export type CleanupWiring = "logger" | "signal" | "clock" | "dryRun";
/** Every user-tunable option of `runCleanup`, all set from config. */
export type CleanupTunedOptions = Required<Omit<CleanupOptions, CleanupWiring>>;

/** `database.*` and `checkpoint.*` as `PostgresCheckpointer` options (durations in ms). */
export function postgresCheckpointerOptions(config: ThreadlineConfig): PostgresTunedOptions {
  return {
    schema: config.database.schema,
    storage: config.checkpoint.storage,
    preparedStatements: config.database.preparedStatements,
    coalesceWrites: config.checkpoint.coalesceWrites,
    deltaCacheSize: config.checkpoint.deltaCacheSize,
    deltaCacheMaxBytes: config.checkpoint.deltaCacheMaxBytes,
    maxDeltaDepth: config.checkpoint.maxDeltaDepth,
    retry: {
      attempts: config.database.retry.attempts,
      baseDelayMs: config.database.retry.baseDelay,
      maxDelayMs: config.database.retry.maxDelay,
    },
  };
}

/** `fallback.*` as `FallbackCheckpointer` options (durations in ms). */
export function fallbackCheckpointerOptions(config: ThreadlineConfig): FallbackTunedOptions {
  const f = config.fallback;
  return {
    enabled: f.enabled,
    maxPendingEntries: f.maxPendingEntries,
    maxPendingBytes: f.maxPendingBytes,
    probeIntervalMs: f.probeInterval,
    probeMaxIntervalMs: f.probeMaxInterval,
    operationTimeoutMs: f.operationTimeout,
    cacheMaxThreads: f.cacheMaxThreads,
    cacheMaxBytes: f.cacheMaxBytes,
    cacheCheckpointsPerNamespace: f.cacheCheckpointsPerNamespace,
    replayConcurrency: f.replayConcurrency,
    retry: {
      attempts: f.retry.attempts,
      baseDelayMs: f.retry.baseDelay,
      maxDelayMs: f.retry.maxDelay,
    },
  };
}

/** `cleanup.*` and `history.keepLatest` as `runCleanup` options (durations in ms). */
export function cleanupOptions(config: ThreadlineConfig): CleanupTunedOptions {
  return {
    schema: config.database.schema,
    ttlMs: config.cleanup.ttl,
    batchSize: config.cleanup.batchSize,
    maxRuntimeMs: config.cleanup.maxRuntime,
    pause: config.cleanup.pause,
    keepLatest: config.history.keepLatest,
  };
}

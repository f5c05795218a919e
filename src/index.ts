/**
 * `threadline`: the library an agent runtime imports (checkpointers, migrations, config loading,
 * errors, types). It loads no HTTP server, model client, cron, embedded database, metrics or
 * Redis client; those live under `threadline/service`, `threadline/cleanup`,
 * `threadline/importer` and `threadline/metrics` (a test walks this entry's module graph).
 * Everything else is internal and may change without notice.
 */
export {
  PostgresCheckpointer,
  FallbackCheckpointer,
  ForwardingSaver,
  type PostgresCheckpointerOptions,
  type FromConnStringOptions,
  type FallbackCheckpointerOptions,
  type FallbackStatus,
  type FallbackMode,
} from "./checkpoint/index.js";
export { loadConfig, type LoadConfigOptions } from "./config/load.js";
export type { ThreadlineConfig, ThreadlineConfigInput } from "./config/schema.js";
export { migrate, pendingMigrations, type MigrationResult } from "./db/migrator.js";
export { createPool, poolStats, type PoolOptions, type PoolStats } from "./db/pool.js";
export { openDatabase, type Database } from "./db/database.js";
export {
  ThreadlineError,
  ConfigError,
  isThreadlineError,
  ERROR_CODES,
  type ErrorCode,
  type ThreadlineErrorOptions,
} from "./errors.js";
export type { Logger } from "./logger.js";

export {
  createPool,
  attachPoolErrorHandler,
  poolStats,
  type PoolOptions,
  type PoolStats,
} from "./pool.js";
export {
  classifyDbError,
  codeForSqlState,
  isConnectionError,
  toThreadlineError,
} from "./errors.js";
export { quoteSchema } from "./identifier.js";
export {
  migrate,
  pendingMigrations,
  loadMigrations,
  renderMigration,
  type Migration,
  type MigrationResult,
} from "./migrator.js";
export { withRetry, type RetryOptions } from "./retry.js";
export { openDatabase, redactUrl, type Database } from "./database.js";
export { probeFreshConnection } from "./probe.js";

/**
 * Threadline's public API. Everything else is internal and may change without notice.
 */
export {
  PostgresCheckpointer,
  FallbackCheckpointer,
  registerFallbackMetrics,
  type PostgresCheckpointerOptions,
  type FromConnStringOptions,
  type FallbackCheckpointerOptions,
  type FallbackStatus,
  type FallbackMode,
  type FallbackMetrics,
} from "./checkpoint/index.js";
export {
  runCleanup,
  startCleanupSchedule,
  createCleanupMetrics,
  cleanupInstalled,
  DEFAULT_CLEANUP_PAUSE,
  type CleanupOptions,
  type CleanupResult,
  type CleanupSchedule,
  type CleanupScheduleOptions,
  type CleanupRunOutcome,
  type CleanupMetrics,
} from "./cleanup/index.js";
export {
  importRedis,
  FORMAT_CHOICES,
  SOURCE_FORMATS,
  type ImportRedisOptions,
  type ImportSummary,
  type ImportProgress,
  type RejectEntry,
  type HistoryMode,
  type FormatChoice,
  type SourceFormat,
} from "./importer/index.js";
export { loadConfig, type LoadConfigOptions, type ThreadlineConfig } from "./config/index.js";
export { createApp, type AppDeps, type ThreadlineApp, type ServiceControl } from "./http/app.js";
export {
  startService,
  type RunningService,
  type StartServiceOptions,
} from "./service/composition-root.js";
export { createChatModel, OfflineChatModel, buildChatGraph } from "./graphs/chat/index.js";
export {
  migrate,
  pendingMigrations,
  createPool,
  poolStats,
  openDatabase,
  type Database,
  type MigrationResult,
  type PoolOptions,
  type PoolStats,
} from "./db/index.js";
export {
  ThreadlineError,
  ConfigError,
  isThreadlineError,
  ERROR_CODES,
  type ErrorCode,
} from "./errors.js";
export type { Logger } from "./logger.js";

export {
  runCleanup,
  cleanupInstalled,
  DEFAULT_CLEANUP_PAUSE,
  type CleanupOptions,
  type CleanupResult,
  type Queryable,
} from "./run.js";
export {
  startCleanupSchedule,
  CLEANUP_LOCK_NAME,
  type CleanupSchedule,
  type CleanupLastRun,
  type CleanupScheduleOptions,
  type CleanupRunOutcome,
} from "./schedule.js";
export { createCleanupMetrics, type CleanupMetrics } from "./metrics.js";

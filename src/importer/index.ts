export {
  importRedis,
  type ImportRedisOptions,
  type ImportProgress,
  type ImportSummary,
  type RejectEntry,
} from "./import.js";
export { type HistoryMode } from "./assemble.js";
export {
  FORMAT_CHOICES,
  SOURCE_FORMATS,
  type FormatChoice,
  type SourceFormat,
  type FormatAdapter,
} from "./types.js";
export { type VerifyMismatch } from "./verify.js";

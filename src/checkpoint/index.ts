export {
  PostgresCheckpointer,
  type PostgresCheckpointerOptions,
  type FromConnStringOptions,
} from "./postgres.js";
export {
  FallbackCheckpointer,
  registerFallbackMetrics,
  type FallbackCheckpointerOptions,
  type FallbackStatus,
  type FallbackMode,
  type FallbackMetrics,
} from "./fallback.js";

export {
  PostgresCheckpointer,
  type PostgresCheckpointerOptions,
  type FromConnStringOptions,
} from "./postgres/index.js";
export {
  FallbackCheckpointer,
  registerFallbackMetrics,
  type FallbackCheckpointerOptions,
  type FallbackStatus,
  type FallbackMode,
  type FallbackMetrics,
} from "./fallback/index.js";

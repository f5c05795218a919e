export {
  FallbackCheckpointer,
  type FallbackCheckpointerOptions,
  type FallbackStatus,
  type FallbackMode,
} from "./checkpointer.js";
export { registerFallbackMetrics, type FallbackMetrics } from "./metrics.js";

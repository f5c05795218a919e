// The checkpointers of the library entry. Nothing here may load prom-client or other service
// packages (the fallback's metrics live in `threadline/metrics`).
export {
  PostgresCheckpointer,
  type PostgresCheckpointerOptions,
  type FromConnStringOptions,
} from "./postgres/index.js";
export {
  FallbackCheckpointer,
  type FallbackCheckpointerOptions,
  type FallbackStatus,
  type FallbackMode,
} from "./fallback/checkpointer.js";
export { ForwardingSaver } from "./forwarding-saver.js";

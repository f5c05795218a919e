/**
 * `threadline/metrics`: Prometheus (prom-client) registration for the parts of Threadline that
 * report metrics. Kept out of the root entry so that a library user does not load prom-client.
 */
export { registerFallbackMetrics, type FallbackMetrics } from "./checkpoint/fallback/metrics.js";
export { createCleanupMetrics, type CleanupMetrics } from "./cleanup/metrics.js";
export {
  InstrumentedCheckpointer,
  registerServiceMetrics,
  type MetricSources,
  type ServiceMetrics,
} from "./http/metrics.js";

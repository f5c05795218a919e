export { createApp, type AppDeps, type ServiceControl, type ThreadlineApp } from "./app.js";
export { createApiKeyAuth, hashApiKey, type ApiKeyAuth, type Principal } from "./auth.js";
export { toUIMessages } from "./chat.js";
export { httpStatusFor, toHttpError, type ErrorBody } from "./errors.js";
export { dbHealth, type DbHealth, type FallbackStatus } from "./health.js";
export {
  InstrumentedCheckpointer,
  registerServiceMetrics,
  type ServiceMetrics,
} from "./metrics.js";
export { ThreadOwners, type ThreadOwnersOptions } from "./owners.js";
export { chatRequestSchema, threadIdSchema, uiMessageSchema, THREAD_ID_RE } from "./schemas.js";

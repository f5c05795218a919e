/**
 * `threadline/service`: the HTTP service (Express, the AI SDK chat route, the Agent Server API,
 * health and metrics) and what starts it. The root entry `threadline` loads none of this.
 */
export { createApp, type AppDeps, type ThreadlineApp, type ServiceControl } from "../http/app.js";
export {
  startService,
  listenHost,
  CLOSE_TIMEOUT_MS,
  type RunningService,
  type StartServiceOptions,
} from "./composition-root.js";
export { buildSavers, type BuildSaversOptions, type ServiceSavers } from "./savers.js";
export { createChatModel, OfflineChatModel, buildChatGraph } from "../graphs/chat/index.js";
export type { GraphSpec } from "../graphs/spec.js";

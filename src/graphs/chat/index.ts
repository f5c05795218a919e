export { buildChatGraph, MODEL_NODE, type ChatGraph, type ChatGraphOptions } from "./graph.js";
export { createChatModel, type ConfiguredModel, type ModelInfo } from "./models.js";
export {
  OfflineChatModel,
  offlineReply,
  tokenize,
  type OfflineChatModelOptions,
} from "./offline.js";
export { countUserTurns, messageText } from "./messages.js";

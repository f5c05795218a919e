import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAI } from "@langchain/openai";
import type { ThreadlineConfig } from "../../config/schema.js";
import { ThreadlineError } from "../../errors.js";
import { OfflineChatModel } from "./offline.js";

/** What the service needs to know about its model, for logs and `/health` (never the key). */
export interface ModelInfo {
  provider: "offline" | "openai";
  name: string;
  /** Base URL of an OpenAI-compatible endpoint, when not the default api.openai.com. */
  baseUrl?: string;
}

/** A chat model plus the safe-to-log description of it. */
export interface ConfiguredModel {
  model: BaseChatModel;
  info: ModelInfo;
}

/**
 * Builds the chat model the config asks for: the offline model (default), or any endpoint that
 * speaks OpenAI chat completions (OpenAI, Ollama `http://localhost:11434/v1`, vLLM
 * `http://host:8000/v1`, ...) with streaming on.
 *
 * @throws ThreadlineError CONFIG_INVALID when `openai` is chosen against api.openai.com without a key.
 */
export function createChatModel(config: ThreadlineConfig["model"]): ConfiguredModel {
  if (config.provider === "offline") {
    return {
      model: new OfflineChatModel({ tokenDelayMs: config.offlineTokenDelay }),
      info: { provider: "offline", name: "offline" },
    };
  }
  if (!config.apiKey && !config.baseUrl) {
    throw new ThreadlineError(
      "CONFIG_INVALID",
      "model.provider is openai but no API key is set: set OPENAI_API_KEY (or THREADLINE_MODEL_API_KEY), or set model.baseUrl to a local OpenAI-compatible server such as Ollama",
    );
  }
  const model = new ChatOpenAI({
    model: config.name,
    // Local servers (Ollama, vLLM) ignore the key, but the client refuses to start without one.
    apiKey: config.apiKey ?? "not-needed",
    temperature: config.temperature,
    timeout: config.timeout,
    maxRetries: config.maxRetries,
    streaming: true,
    // stream_options.include_usage is not understood by every OpenAI-compatible server.
    streamUsage: false,
    ...(config.baseUrl ? { configuration: { baseURL: config.baseUrl } } : {}),
  });
  return {
    model,
    info: {
      provider: "openai",
      name: config.name,
      ...(config.baseUrl ? { baseUrl: config.baseUrl } : {}),
    },
  };
}

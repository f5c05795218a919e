import { setTimeout as sleep } from "node:timers/promises";
import type { CallbackManagerForLLMRun } from "@langchain/core/callbacks/manager";
import {
  BaseChatModel,
  type BaseChatModelParams,
} from "@langchain/core/language_models/chat_models";
import { AIMessage, AIMessageChunk, type BaseMessage } from "@langchain/core/messages";
import { ChatGenerationChunk, type ChatResult } from "@langchain/core/outputs";
import { countUserTurns, messageText } from "./messages.js";

/** Options of {@link OfflineChatModel}. */
export interface OfflineChatModelOptions extends BaseChatModelParams {
  /** Pause between tokens in ms (default 0); lets tests and demos watch a stream in flight. */
  tokenDelayMs?: number;
}

/** Longest excerpt of the user's message echoed back by the offline model. */
const ECHO_CHARS = 80;

/**
 * The reply of the offline model for a conversation: deterministic, and naming the turn
 * (`turn N`, N = user messages in the thread including the new one) so that memory is visible
 * through the API without a real model.
 */
export function offlineReply(messages: readonly BaseMessage[]): string {
  const turn = countUserTurns(messages);
  const lastUser = [...messages].reverse().find((m) => m.getType() === "human");
  const said = lastUser ? messageText(lastUser).replace(/\s+/g, " ").trim() : "";
  const echo = said.length > ECHO_CHARS ? `${said.slice(0, ECHO_CHARS - 1)}…` : said;
  return `Offline model, turn ${turn}. You said: "${echo}". Configure model.provider: openai to talk to a real model.`;
}

/** Splits a reply into word-sized tokens that concatenate back to the exact text. */
export function tokenize(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/**
 * A chat model that needs no network and no weights: the service's default, so that a fresh
 * clone answers (and shows that its memory works) before any model is configured. It streams its
 * reply word by word through the same LangChain callbacks a real model uses.
 */
export class OfflineChatModel extends BaseChatModel {
  private readonly tokenDelayMs: number;

  constructor(options: OfflineChatModelOptions = {}) {
    super(options);
    this.tokenDelayMs = options.tokenDelayMs ?? 0;
  }

  static override lc_name(): string {
    return "ThreadlineOfflineChatModel";
  }

  override _llmType(): string {
    return "threadline-offline";
  }

  override _generate(messages: BaseMessage[]): Promise<ChatResult> {
    const text = offlineReply(messages);
    return Promise.resolve({ generations: [{ text, message: new AIMessage(text) }] });
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    const signal = options.signal;
    for (const token of tokenize(offlineReply(messages))) {
      signal?.throwIfAborted();
      if (this.tokenDelayMs > 0)
        await sleep(this.tokenDelayMs, undefined, signal ? { signal } : {});
      const chunk = new ChatGenerationChunk({
        text: token,
        message: new AIMessageChunk({ content: token }),
      });
      yield chunk;
      await runManager?.handleLLMNewToken(token, undefined, undefined, undefined, undefined, {
        chunk,
      });
    }
  }
}

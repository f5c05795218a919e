import { AIMessageChunk, type AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { UIMessageChunk } from "ai";
import { messageText } from "../graphs/chat/messages.js";

/** The stream modes {@link ChatStreamTranslator} reads: model tokens, and each node's update. */
export const CHAT_STREAM_MODES = ["messages", "updates"] as const;

function isMessage(value: unknown): value is BaseMessage {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { getType?: unknown }).getType === "function"
  );
}

/** The messages a node's update adds (`{ messages: m | m[] }`); anything else is not shown. */
function updateMessages(update: unknown): BaseMessage[] {
  const messages = (update as { messages?: unknown } | null | undefined)?.messages;
  const list: unknown[] = Array.isArray(messages) ? messages : [messages];
  return list.filter(isMessage);
}

/**
 * Turns one LangGraph run's `["messages", "updates"]` stream into AI SDK UI message chunks for
 * any graph whose state has `messages`: each AI message's tokens as a text part of its own, each
 * tool call as a `dynamic-tool` part (input when the model asked, output when the tool answered),
 * and an `interrupt()` as a `data-interrupt` part with its values. Only AI messages become text:
 * the user's own message and tool results are not echoed.
 */
export class ChatStreamTranslator {
  /** Tasks (node runs) whose model call streamed tokens: their final message repeats them. */
  private readonly streamed = new Set<string>();
  private openText: string | undefined;
  private partKey: string | undefined;
  private parts = 0;

  /** @param messageId the reply's id (`start` chunk); text part ids derive from it. */
  constructor(private readonly messageId: string) {}

  /** The chunks one stream event contributes (none for events the chat does not show). */
  translate(mode: string, payload: unknown): UIMessageChunk[] {
    if (mode === "messages") {
      const [message, metadata] = payload as [unknown, Record<string, unknown> | undefined];
      return isMessage(message) ? this.token(message, metadata ?? {}) : [];
    }
    if (mode !== "updates" || payload === null || typeof payload !== "object") return [];
    const out: UIMessageChunk[] = [];
    for (const [node, update] of Object.entries(payload as Record<string, unknown>)) {
      if (node === "__interrupt__") {
        out.push(...this.closeText(), { type: "data-interrupt", data: update });
        continue;
      }
      for (const message of updateMessages(update)) out.push(...this.toolChunks(message));
    }
    return out;
  }

  /** What ends the reply: the open text part's end. */
  finish(): UIMessageChunk[] {
    return this.closeText();
  }

  private token(message: BaseMessage, metadata: Record<string, unknown>): UIMessageChunk[] {
    if (message.getType() !== "ai") return [];
    const ns = metadata.langgraph_checkpoint_ns;
    const task =
      typeof ns === "string"
        ? ns
        : `${String(metadata.langgraph_node)}:${String(metadata.langgraph_step)}`;
    if (AIMessageChunk.isInstance(message)) this.streamed.add(task);
    // A model that streamed: the node's final message repeats its tokens (under another id).
    else if (this.streamed.has(task)) return [];
    const delta = messageText(message);
    if (delta === "") return [];
    const key = message.id ?? task;
    const out: UIMessageChunk[] = [];
    if (this.openText === undefined || this.partKey !== key) {
      out.push(...this.closeText());
      this.openText =
        this.parts === 0 ? `text-${this.messageId}` : `text-${this.messageId}-${this.parts}`;
      this.parts++;
      this.partKey = key;
      out.push({ type: "text-start", id: this.openText });
    }
    out.push({ type: "text-delta", id: this.openText, delta });
    return out;
  }

  private toolChunks(message: BaseMessage): UIMessageChunk[] {
    const type = message.getType();
    if (type === "ai") {
      const calls = (message as AIMessage).tool_calls ?? [];
      if (calls.length === 0) return [];
      return [
        ...this.closeText(),
        ...calls.map((call): UIMessageChunk => ({
          type: "tool-input-available",
          toolCallId: call.id ?? "",
          toolName: call.name,
          input: call.args,
          dynamic: true,
        })),
      ];
    }
    if (type === "tool") {
      const toolCallId = (message as BaseMessage & { tool_call_id?: unknown }).tool_call_id;
      if (typeof toolCallId !== "string") return [];
      return [
        ...this.closeText(),
        { type: "tool-output-available", toolCallId, output: message.content, dynamic: true },
      ];
    }
    return [];
  }

  private closeText(): UIMessageChunk[] {
    if (this.openText === undefined) return [];
    const id = this.openText;
    this.openText = undefined;
    this.partKey = undefined;
    return [{ type: "text-end", id }];
  }
}

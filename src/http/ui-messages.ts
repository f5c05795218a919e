import {
  HumanMessage,
  RemoveMessage,
  type BaseMessage,
  type ToolMessage,
  type AIMessage,
} from "@langchain/core/messages";
import type { UIMessage } from "ai";
import { messageText } from "../graphs/chat/messages.js";
import { ThreadlineError } from "../errors.js";
import { uiMessageText, type ChatRequest } from "./schemas.js";

/** Where a user message's `metadata` is kept on the LangChain message (no provider sends it). */
const UI_METADATA_KEY = "ui_metadata";

type UIPart = UIMessage["parts"][number];

/** The message list of a thread's state (empty for a new thread). */
export function stateMessages(values: unknown): BaseMessage[] {
  const messages = (values as { messages?: unknown } | undefined)?.messages;
  return Array.isArray(messages) ? (messages as BaseMessage[]) : [];
}

function toolCallsOf(message: BaseMessage): NonNullable<AIMessage["tool_calls"]> {
  return message.getType() === "ai" ? ((message as AIMessage).tool_calls ?? []) : [];
}

/**
 * LangChain messages -> AI SDK `UIMessage`s for reloading a chat, in the shape the stream gave
 * them: the AI and tool messages between two user messages become one assistant message whose
 * parts are its texts and its tool calls (`dynamic-tool`, with the tool's output once it
 * answered). Messages written without an id (by other agents or imported) get a stable
 * positional one.
 */
export function toUIMessages(messages: readonly BaseMessage[]): UIMessage[] {
  const outputs = new Map<string, ToolMessage>();
  for (const m of messages) {
    if (m.getType() === "tool") {
      const tool = m as ToolMessage;
      outputs.set(tool.tool_call_id, tool);
    }
  }
  const out: UIMessage[] = [];
  let assistant: UIMessage | undefined;
  messages.forEach((message, index) => {
    const type = message.getType();
    if (type === "tool") return; // shown as the output of its call
    if (type !== "ai") {
      assistant = undefined;
      if (type !== "human" && type !== "system") return;
      const metadata: unknown = message.additional_kwargs?.[UI_METADATA_KEY];
      out.push({
        id: message.id ?? `msg-${index}`,
        role: type === "human" ? "user" : "system",
        ...(metadata !== undefined ? { metadata } : {}),
        parts: [{ type: "text", text: messageText(message) }],
      });
      return;
    }
    if (!assistant) {
      assistant = { id: message.id ?? `msg-${index}`, role: "assistant", parts: [] };
      out.push(assistant);
    }
    const text = messageText(message);
    if (text !== "") assistant.parts.push({ type: "text", text });
    for (const call of toolCallsOf(message)) assistant.parts.push(toolPart(call, outputs));
  });
  return out;
}

function toolPart(
  call: NonNullable<AIMessage["tool_calls"]>[number],
  outputs: ReadonlyMap<string, ToolMessage>,
): UIPart {
  const toolCallId = call.id ?? "";
  const output = outputs.get(toolCallId);
  if (!output) {
    return {
      type: "dynamic-tool",
      toolName: call.name,
      toolCallId,
      state: "input-available",
      input: call.args,
    };
  }
  return {
    type: "dynamic-tool",
    toolName: call.name,
    toolCallId,
    state: "output-available",
    input: call.args,
    output: output.content,
  };
}

/**
 * The graph input for one new user message. Usually just the message; when its id is already in
 * the thread (AI SDK `regenerate()`, or editing an earlier message), the history from that message
 * on is replaced, as the client's view of the chat is.
 */
export function turnInput(history: readonly BaseMessage[], request: ChatRequest): BaseMessage[] {
  const { message } = request;
  if (message.role !== "user") {
    throw new ThreadlineError("INVALID_INPUT", 'the new message must have role "user"');
  }
  const text = uiMessageText(message);
  if (text.trim() === "") {
    throw new ThreadlineError("INVALID_INPUT", "the new message has no text part");
  }
  const human = new HumanMessage({
    id: message.id,
    content: text,
    ...(message.metadata !== undefined
      ? { additional_kwargs: { [UI_METADATA_KEY]: message.metadata } }
      : {}),
  });
  const at = history.findIndex((m) => m.id === message.id);
  if (at === -1) return [human];
  if (history[at]!.getType() !== "human") {
    throw new ThreadlineError("INVALID_INPUT", "the message id belongs to an assistant message");
  }
  const removed = history
    .slice(at + 1)
    .flatMap((m) => (m.id ? [new RemoveMessage({ id: m.id })] : []));
  return [...removed, human];
}

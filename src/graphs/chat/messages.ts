import type { BaseMessage } from "@langchain/core/messages";

/** The text of a LangChain message: a string content, or its text blocks concatenated. */
export function messageText(message: Pick<BaseMessage, "content">): string {
  const content: unknown = message.content;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  let text = "";
  for (const block of content) {
    if (typeof block === "string") text += block;
    else if (block !== null && typeof block === "object") {
      const b = block as { type?: unknown; text?: unknown };
      if ((b.type === "text" || b.type === "text_delta") && typeof b.text === "string")
        text += b.text;
    }
  }
  return text;
}

/** How many user messages a conversation holds (the offline model's `turn N`). */
export function countUserTurns(messages: readonly BaseMessage[]): number {
  return messages.filter((m) => m.getType() === "human").length;
}

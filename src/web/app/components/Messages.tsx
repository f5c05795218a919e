import type { AIMessage, Message, ToolMessage } from "@langchain/langgraph-sdk";
import { json, textOf } from "../format.js";

const ROLE_NAMES: Record<string, string> = {
  human: "You",
  ai: "Assistant",
  system: "System",
  tool: "Tool",
};

interface MessagesProps {
  messages: Message[];
  streaming: boolean;
  /** Shown under the last assistant message when it can be answered again. */
  onRegenerate?: (() => void) | undefined;
}

/**
 * The conversation. Tool calls and their results are folded (`<details>`) under the assistant
 * message that made them, so a long tool output does not push the answer off screen.
 */
export function Messages({ messages, streaming, onRegenerate }: MessagesProps) {
  const results = new Map<string, ToolMessage>();
  for (const m of messages) if (m.type === "tool") results.set(m.tool_call_id, m);
  const shown = messages.filter(
    (m) => m.type !== "remove" && !(m.type === "tool" && toolCallIds(messages).has(m.tool_call_id)),
  );
  const lastAi = findLastIndex(shown, (m) => m.type === "ai");

  return (
    <>
      {shown.map((m, i) => {
        const text = textOf(m.content);
        const isLastAi = i === lastAi;
        return (
          <div
            key={m.id ?? `i${i}`}
            className={`msg msg-${m.type}`}
            data-role={m.type}
            aria-busy={isLastAi && streaming ? true : undefined}
          >
            <div className="msg-role">{ROLE_NAMES[m.type] ?? m.type}</div>
            {text ? <div className="msg-text">{text}</div> : null}
            {m.type === "ai" ? <ToolCalls message={m} results={results} /> : null}
            {m.type === "tool" ? (
              <details className="tool">
                <summary>Tool result{m.name ? `: ${m.name}` : ""}</summary>
                <pre>{text || json(m.content)}</pre>
              </details>
            ) : null}
            {isLastAi && !streaming && onRegenerate ? (
              <button type="button" className="link" onClick={onRegenerate}>
                Regenerate
              </button>
            ) : null}
          </div>
        );
      })}
    </>
  );
}

function ToolCalls({
  message,
  results,
}: {
  message: AIMessage;
  results: Map<string, ToolMessage>;
}) {
  const calls = message.tool_calls ?? [];
  if (calls.length === 0) return null;
  return (
    <>
      {calls.map((call, i) => {
        const result = call.id ? results.get(call.id) : undefined;
        return (
          <details key={call.id ?? i} className="tool" data-tool-call={call.name}>
            <summary>
              Tool call: {call.name}
              {result ? " (done)" : ""}
            </summary>
            <div className="tool-label">Arguments</div>
            <pre>{json(call.args)}</pre>
            {result ? (
              <>
                <div className="tool-label">Result</div>
                <pre>{textOf(result.content) || json(result.content)}</pre>
              </>
            ) : null}
          </details>
        );
      })}
    </>
  );
}

function toolCallIds(messages: Message[]): Set<string> {
  const ids = new Set<string>();
  for (const m of messages) {
    if (m.type !== "ai") continue;
    for (const call of m.tool_calls ?? []) if (call.id) ids.add(call.id);
  }
  return ids;
}

function findLastIndex<T>(items: T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i] as T)) return i;
  return -1;
}

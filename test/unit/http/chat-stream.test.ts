import { AIMessage, AIMessageChunk, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { ChatStreamTranslator } from "../../../src/http/chat-stream.js";

const meta = (ns: string) => ({ langgraph_checkpoint_ns: ns, langgraph_node: ns.split(":")[0] });

describe("ChatStreamTranslator", () => {
  it("streams tokens once: the node's final message repeating them is dropped", () => {
    const t = new ChatStreamTranslator("r1");
    const out = [
      ...t.translate("messages", [
        new AIMessageChunk({ id: "run-a", content: "Hel" }),
        meta("agent:1"),
      ]),
      ...t.translate("messages", [
        new AIMessageChunk({ id: "run-a", content: "lo" }),
        meta("agent:1"),
      ]),
      ...t.translate("messages", [
        new AIMessage({ id: "final", content: "Hello" }),
        meta("agent:1"),
      ]),
      ...t.finish(),
    ];
    expect(out).toEqual([
      { type: "text-start", id: "text-r1" },
      { type: "text-delta", id: "text-r1", delta: "Hel" },
      { type: "text-delta", id: "text-r1", delta: "lo" },
      { type: "text-end", id: "text-r1" },
    ]);
  });

  it("gives each AI message its own text part, shows a model that did not stream, and never echoes the user", () => {
    const t = new ChatStreamTranslator("r2");
    const out = [
      ...t.translate("messages", [new HumanMessage({ id: "u", content: "hi" }), meta("agent:1")]),
      ...t.translate("messages", [new AIMessage({ id: "a1", content: "One" }), meta("agent:1")]),
      ...t.translate("messages", [new AIMessage({ id: "a2", content: "Two" }), meta("agent:2")]),
      ...t.finish(),
    ];
    expect(out.map((c) => [c.type, "id" in c ? c.id : undefined])).toEqual([
      ["text-start", "text-r2"],
      ["text-delta", "text-r2"],
      ["text-end", "text-r2"],
      ["text-start", "text-r2-1"],
      ["text-delta", "text-r2-1"],
      ["text-end", "text-r2-1"],
    ]);
  });

  it("turns tool calls, tool results and interrupts from node updates into parts", () => {
    const t = new ChatStreamTranslator("r3");
    const call = { id: "c1", name: "get_weather", args: { city: "Oslo" } };
    const out = [
      ...t.translate("messages", [
        new AIMessageChunk({ id: "run-b", content: "Let me look" }),
        meta("agent:1"),
      ]),
      ...t.translate("updates", {
        agent: { messages: [new AIMessage({ content: "", tool_calls: [call] })] },
      }),
      ...t.translate("updates", {
        tools: { messages: [new ToolMessage({ tool_call_id: "c1", content: "sunny" })] },
      }),
      ...t.translate("updates", { __interrupt__: [{ value: { question: "ok?" } }] }),
      ...t.translate("updates", { agent: { count: 1 } }),
      ...t.finish(),
    ];
    expect(out).toEqual([
      { type: "text-start", id: "text-r3" },
      { type: "text-delta", id: "text-r3", delta: "Let me look" },
      { type: "text-end", id: "text-r3" },
      {
        type: "tool-input-available",
        toolCallId: "c1",
        toolName: "get_weather",
        input: { city: "Oslo" },
        dynamic: true,
      },
      { type: "tool-output-available", toolCallId: "c1", output: "sunny", dynamic: true },
      { type: "data-interrupt", data: [{ value: { question: "ok?" } }] },
    ]);
  });
});

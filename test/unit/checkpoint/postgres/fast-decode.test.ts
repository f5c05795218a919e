import {
  AIMessage,
  AIMessageChunk,
  HumanMessage,
  RemoveMessage,
  SystemMessage,
  ToolMessage,
  ChatMessage,
} from "@langchain/core/messages";
import { JsonPlusSerializer } from "@langchain/langgraph-checkpoint";
import { FALLBACK, fastDecode } from "../../../../src/checkpoint/postgres/fast-decode.js";

const serde = new JsonPlusSerializer();
const text = async (value: unknown) => new TextDecoder().decode((await serde.dumpsTyped(value))[1]);

// The fast path must build exactly what the serializer builds, or step aside.
describe("fastDecode", () => {
  const samples: Array<[string, unknown]> = [
    ["plain JSON", { a: 1, b: [true, null, "x"], c: { d: 2.5 } }],
    ["human message", [new HumanMessage({ content: "hi", id: "h1", name: "ann" })]],
    [
      "ai message with tool calls and usage",
      [
        new AIMessage({
          content: "",
          id: "a1",
          tool_calls: [{ id: "c1", name: "get_weather", args: { city: "sf" }, type: "tool_call" }],
          usage_metadata: { input_tokens: 3, output_tokens: 4, total_tokens: 7 },
        } as ConstructorParameters<typeof AIMessage>[0] & object),
      ],
    ],
    [
      "ai message with metadata",
      [
        new AIMessage({
          content: "done",
          response_metadata: { model_name: "m", finish_reason: "tool_calls" },
          additional_kwargs: { extra: { nested: [1, 2] } },
        }),
      ],
    ],
    [
      "tool message",
      [
        new ToolMessage({
          content: "72F",
          tool_call_id: "c1",
          name: "get_weather",
          status: "success",
          artifact: { raw: 72 },
        }),
      ],
    ],
    [
      "system, chat and remove messages",
      [
        new SystemMessage("be brief"),
        new ChatMessage({ content: "x", role: "critic" }),
        new RemoveMessage({ id: "h1" }),
      ],
    ],
    [
      "multimodal content",
      [
        new HumanMessage({
          content: [
            { type: "text", text: "look" },
            { type: "image_url", image_url: { url: "data:x" } },
          ],
        }),
      ],
    ],
    [
      "messages inside a state object",
      { messages: [new HumanMessage("a"), new AIMessage("b")], counter: 3 },
    ],
  ];

  it.each(samples)("decodes %s exactly like JsonPlusSerializer", async (_name, value) => {
    const json = await text(value);
    const fast = fastDecode(json);
    const slow = await serde.loadsTyped("json", json);
    expect(fast).not.toBe(FALLBACK);
    expect(fast).toEqual(slow);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(slow));
    const ctor = (v: unknown) =>
      Array.isArray(v)
        ? v.map((m) => (m as object)?.constructor?.name)
        : (v as object)?.constructor?.name;
    expect(ctor(fast)).toEqual(ctor(slow));
  });

  it.each([
    [
      "an AI message chunk (serialized with lc:2 fields)",
      [new AIMessageChunk({ content: "part", id: "c" })],
    ],
    ["a Set (lc:2 record)", new Set([1, 2])],
    ["undefined inside an object", { a: undefined, b: 1 }],
    ["a Map", new Map([["k", 1]])],
  ])("falls back for %s", async (_name, value) => {
    expect(fastDecode(await text(value))).toBe(FALLBACK);
  });

  it.each([
    ["kwargs holding a __proto__ key", '{"content":"hi","__proto__":{"x":1},"id":"a"}'],
    [
      "kwargs keys that need camel-casing",
      '{"content":"hi","some-key value":1,"tool_call_id":"t"}',
    ],
    ["a nested __proto__ key", '{"content":"hi","additional_kwargs":{"__proto__":{"p":1},"a":1}}'],
  ])("decodes a stored message with %s like JsonPlusSerializer", async (_name, kwargs) => {
    const json = `[{"lc":1,"type":"constructor","id":["langchain_core","messages","HumanMessage"],"kwargs":${kwargs}}]`;
    const fast = fastDecode(json);
    const slow = await serde.loadsTyped("json", json);
    expect(fast).not.toBe(FALLBACK);
    expect(fast).toEqual(slow);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(slow));
  });

  it("falls back for namespaces outside langchain_core messages", () => {
    const json = JSON.stringify({
      lc: 1,
      type: "constructor",
      id: ["langchain", "schema", "messages", "HumanMessage"],
      kwargs: { content: "x" },
    });
    expect(fastDecode(json)).toBe(FALLBACK);
  });

  it("throws on invalid JSON like the serializer does", () => {
    expect(() => fastDecode("{not json")).toThrow();
  });
});

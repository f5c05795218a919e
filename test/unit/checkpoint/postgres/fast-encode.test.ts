import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { JsonPlusSerializer } from "@langchain/langgraph-checkpoint";
import { Send } from "@langchain/langgraph";
import { fastEncode } from "../../../../src/checkpoint/postgres/fast-encode.js";

const serde = new JsonPlusSerializer();
const viaSerde = async (value: unknown) =>
  new TextDecoder().decode((await serde.dumpsTyped(value))[1]);

describe("fastEncode", () => {
  it.each([
    ["null", null],
    ["a number", 42.5],
    ["a string with quotes and unicode", 'say "hé" \u2028 ok'],
    ["a plain object", { step: 3, source: "loop", parents: {}, nested: [1, { a: [true, null] }] }],
    ["a date (toJSON)", { at: new Date("2026-01-02T03:04:05Z") }],
    [
      "LangChain messages",
      [
        new HumanMessage({ content: "hello", id: "h-1" }),
        new AIMessage({
          content: "",
          id: "a-1",
          tool_calls: [{ name: "search", args: { q: "weather" }, id: "call_1", type: "tool_call" }],
        }),
        new ToolMessage({ content: "sunny", tool_call_id: "call_1", id: "t-1" }),
      ],
    ],
  ])("writes exactly what JsonPlusSerializer writes: %s", async (_name, value) => {
    expect(fastEncode(value)).toBe(await viaSerde(value));
  });

  it.each([
    ["undefined", undefined],
    ["an undefined property", { a: undefined }],
    ["a Set", new Set([1])],
    ["a Map inside an array", [new Map([["k", 1]])]],
    ["a Uint8Array", { bytes: new Uint8Array([1, 2]) }],
    ["an Error", { error: new Error("boom") }],
    ["a Send", [new Send("node", { x: 1 })]],
    [
      "a class instance",
      {
        value: new (class Point {
          x = 1;
        })(),
      },
    ],
  ])("leaves %s to the serializer", (_name, value) => {
    expect(fastEncode(value)).toBeUndefined();
  });

  it("leaves circular values to the serializer", () => {
    const a: Record<string, unknown> = { name: "a" };
    a["self"] = a;
    expect(fastEncode(a)).toBeUndefined();
  });
});

import { encode, ExtData } from "@msgpack/msgpack";
import { JsonPlusSerializer } from "@langchain/langgraph-checkpoint";
import { AIMessage } from "@langchain/core/messages";
import { decodePythonTyped } from "../../../src/importer/formats/common.js";
import { decodePythonMsgpack } from "../../../src/importer/msgpack.js";
import {
  decodeBase64Strict,
  decodeCommaBytes,
  normalizeId,
  normalizeNs,
  normalizeValue,
  parseMetadata,
  stripNul,
  toIntVersion,
  type ValueFlags,
} from "../../../src/importer/values.js";

const flags = (): ValueFlags => new Map();

describe("importer value decoding", () => {
  it("converts Python string channel versions to their integer part", () => {
    expect(toIntVersion("00000000000000000000000000000003.0.7312435371828865")).toBe(3);
    expect(toIntVersion(8)).toBe(8);
    expect(toIntVersion("12")).toBe(12);
    expect(toIntVersion("not-a-version")).toBeUndefined();
    expect(toIntVersion(null)).toBeUndefined();
  });

  it("reads a version's integer part as int(v.split('.')[0]) would, and nothing else", () => {
    const cases: Array<[string, number | undefined]> = [
      ["-3.5", -3],
      ["-0", -0],
      ["7.", 7],
      ["0042", 42],
      ["9007199254740991.0", 9007199254740991],
      ["9007199254740993.0", undefined], // beyond a safe integer
      [".5", undefined],
      ["", undefined],
      ["-", undefined],
      ["-.1", undefined],
      ["1e3", undefined],
      [" 1", undefined],
      ["1 .2", undefined],
      ["+1", undefined],
      ["١٢", undefined], // non-ASCII digits are not digits here
    ];
    for (const [v, want] of cases) expect(toIntVersion(v), v).toBe(want);
  });

  it("rewrites Python LangChain message ids so JS load() accepts them", async () => {
    const f = flags();
    const value = normalizeValue(
      [
        {
          lc: 1,
          type: "constructor",
          id: ["langchain", "schema", "messages", "AIMessage"],
          kwargs: { content: "hi", type: "ai", tool_calls: [] },
        },
      ],
      f,
    );
    expect((value as Array<{ id: string[] }>)[0]!.id).toEqual([
      "langchain_core",
      "messages",
      "AIMessage",
    ]);
    expect(f.get("python-lc-id")).toBe(1);
    const revived = (await new JsonPlusSerializer().loadsTyped(
      "json",
      JSON.stringify(value),
    )) as AIMessage[];
    expect(revived[0]).toBeInstanceOf(AIMessage);
    expect(revived[0]!.content).toBe("hi");
  });

  it("turns Python markers into their JS shapes and rejects Python-only objects", () => {
    const f = flags();
    expect(
      normalizeValue({ __interrupt__: true, value: "approve?", id: "i1", resumable: true }, f),
    ).toEqual({ value: "approve?", id: "i1" });
    expect(normalizeValue({ __send__: true, node: "tools", arg: { x: 1 } }, f)).toEqual({
      node: "tools",
      args: { x: 1 },
    });
    expect(
      normalizeValue(
        { lc: 2, type: "constructor", id: ["builtins", "set"], method: null, args: [[1, 2]] },
        f,
      ),
    ).toMatchObject({
      id: ["Set"],
      args: [[1, 2]],
    });
    expect(normalizeValue({ __bytes__: "AQI=" }, f)).toMatchObject({
      id: ["Uint8Array"],
      args: [[1, 2]],
    });
    expect(() =>
      normalizeValue(
        { lc: 2, type: "constructor", id: ["myapp", "models", "Order"], kwargs: {} },
        f,
      ),
    ).toThrow(/Python-only object myapp.models.Order/);
    expect(() => normalizeValue({ lc: 1, type: "not_implemented", id: ["x"] }, f)).toThrow(
      /not serializable/,
    );
  });

  it("parses metadata strings, drops writes and strips NUL characters", () => {
    expect(
      parseMetadata('{"source": "loop", "step": 1, "writes": null, "note": "a\\u0000b"}', flags()),
    ).toEqual({
      source: "loop",
      step: 1,
      note: "ab",
    });
    expect(parseMetadata({ source: "input" }, flags())).toEqual({ source: "input" });
    expect(() => parseMetadata("{oops", flags())).toThrow(/metadata is not valid JSON/);
  });

  it("decodes checkpoint-redis comma bytes and strict base64", () => {
    expect(Buffer.from(decodeCommaBytes("123,125")).toString()).toBe("{}");
    expect(() => decodeCommaBytes("1,999")).toThrow();
    expect(Buffer.from(decodeBase64Strict("e30=")).toString()).toBe("{}");
    expect(() => decodeBase64Strict("{not base64}")).toThrow(/neither JSON nor base64/);
  });

  it("maps the Python sentinels to root namespace and no id", () => {
    expect(normalizeNs("__empty__")).toBe("");
    expect(normalizeNs("agent:1|tools:2")).toBe("agent:1|tools:2");
    expect(normalizeId("00000000-0000-0000-0000-000000000000")).toBeNull();
    expect(normalizeId("")).toBeNull();
    expect(normalizeId("1f0")).toBe("1f0");
  });

  it("decodes Python msgpack messages (ext 5) into JS lc records", () => {
    const msg = new ExtData(
      5,
      encode([
        "langchain_core.messages.human",
        "HumanMessage",
        {
          content: "hi",
          additional_kwargs: {},
          response_metadata: {},
          type: "human",
          name: null,
          id: "h1",
          example: false,
        },
        "model_validate_json",
      ]),
    );
    const when = new ExtData(
      3,
      encode(["datetime", "datetime", "2025-01-01T00:00:00+00:00", "fromisoformat"]),
    );
    const uuid = new ExtData(0, encode(["uuid", "UUID", "0123456789abcdef0123456789abcdef"]));
    expect(decodePythonMsgpack(encode({ messages: [msg], at: when, id: uuid }))).toEqual({
      messages: [
        {
          lc: 1,
          type: "constructor",
          id: ["langchain_core", "messages", "HumanMessage"],
          kwargs: {
            content: "hi",
            additional_kwargs: {},
            response_metadata: {},
            type: "human",
            id: "h1",
          },
        },
      ],
      at: "2025-01-01T00:00:00+00:00",
      id: "01234567-89ab-cdef-0123-456789abcdef",
    });
    const model = new ExtData(
      5,
      encode(["myapp.models", "Order", { id: 1 }, "model_validate_json"]),
    );
    expect(() => decodePythonMsgpack(encode([model]))).toThrow(/Pydantic model myapp.models.Order/);
    expect(() => decodePythonMsgpack(new Uint8Array([0xc1]))).toThrow(/cannot be decoded/);
  });

  it("returns values that need no conversion as they are, and copies only what changes", () => {
    const js = [
      {
        lc: 1,
        type: "constructor",
        id: ["langchain_core", "messages", "HumanMessage"],
        kwargs: { content: "hi", additional_kwargs: {} },
      },
      { plain: [1, "two", null] },
    ];
    const f = flags();
    expect(normalizeValue(js, f)).toBe(js);
    expect(f.size).toBe(0);
    const pyMsg = {
      lc: 1,
      type: "constructor",
      id: ["langchain", "schema", "messages", "AIMessage"],
      kwargs: { content: "a" },
    };
    const mixed = { keep: js, msgs: [js[1], pyMsg] };
    const snapshot = structuredClone(mixed);
    const out = normalizeValue(mixed, flags()) as typeof mixed;
    expect(mixed).toEqual(snapshot); // the source value is never modified
    expect(out).not.toBe(mixed);
    expect(out.keep).toBe(js); // unchanged subtrees are shared
    expect(out.msgs[0]).toBe(js[1]);
    expect(out.msgs[1]).toEqual({ ...pyMsg, id: ["langchain_core", "messages", "AIMessage"] });
    expect(Object.keys(out)).toEqual(["keep", "msgs"]);
  });

  it("strips NULs copy-on-write, keys included", () => {
    const clean = { a: ["x", { b: "y" }] };
    expect(stripNul(clean)).toBe(clean);
    const dirty = { a: ["x", { b: "y\u0000z" }], "k\u0000": 1, c: 2 };
    expect(stripNul(dirty)).toEqual({ a: ["x", { b: "yz" }], k: 1, c: 2 });
    expect(dirty.a[1]).toEqual({ b: "y\u0000z" });
  });

  it("decodes Python payloads as JSON text or base64, whichever they are", () => {
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    expect(decodePythonTyped("json", '{"a":1}', flags())).toEqual({ a: 1 });
    expect(decodePythonTyped("json", " [1]", flags())).toEqual([1]);
    expect(decodePythonTyped("json", b64('{"a":1}'), flags())).toEqual({ a: 1 });
    expect(decodePythonTyped("json", "12", flags())).toBe(12);
    // Text that starts like JSON but is base64 (of bytes that are not UTF-8) is still tried as
    // base64 and rejected for what it is.
    expect(() => decodePythonTyped("json", "12a4", flags())).toThrow(/not valid UTF-8/);
    expect(() => decodePythonTyped("json", "not base64!", flags())).toThrow(
      /neither JSON nor base64/,
    );
  });
});

import {
  FILTER_MAX_DEPTH,
  ID_MAX_BYTES,
  asCheckpointId,
  asId,
  asLimit,
  asNamespace,
  assertStorable,
  filterJson,
} from "../../../src/checkpoint/config-ids.js";
import { isThreadlineError } from "../../../src/errors.js";

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isThreadlineError(err) ? err.code : `not a ThreadlineError: ${String(err)}`;
  }
  return undefined;
}

function nested(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 0; i < depth; i++) {
    const next: Record<string, unknown> = {};
    node.a = next;
    node = next;
  }
  return root;
}

describe("config ids", () => {
  it("refuses lone surrogates so that a\\ud800b, a\\udc00b and a\\ufffdb stay three threads", () => {
    expect(code(() => asId("a\ud800b", "thread_id", true))).toBe("INVALID_INPUT");
    expect(code(() => asId("a\udc00b", "thread_id", true))).toBe("INVALID_INPUT");
    expect(code(() => asNamespace("ns\ud800"))).toBe("INVALID_INPUT");
    expect(code(() => asCheckpointId("\udc00", "put"))).toBe("INVALID_INPUT");
    // U+FFFD itself and proper pairs (emoji) are ordinary text.
    expect(asId("a\ufffdb", "thread_id", true)).toBe("a\ufffdb");
    expect(asId("chat-\ud83d\ude00", "thread_id", true)).toBe("chat-\ud83d\ude00");
  });

  it("refuses NUL in ids, which Postgres text cannot hold", () => {
    expect(code(() => asId("a\u0000b", "thread_id", true))).toBe("INVALID_INPUT");
  });

  it("accepts ids up to the documented byte limits and refuses longer ones", () => {
    expect(asId("x".repeat(ID_MAX_BYTES.thread_id), "thread_id", true)).toHaveLength(512);
    expect(code(() => asId("x".repeat(ID_MAX_BYTES.thread_id + 1), "thread_id", true))).toBe(
      "INVALID_INPUT",
    );
    // Counted in UTF-8 bytes: 171 three-byte characters are 513 bytes.
    expect(code(() => asId("€".repeat(171), "thread_id", true))).toBe("INVALID_INPUT");
    expect(asNamespace("n".repeat(ID_MAX_BYTES.checkpoint_ns))).toHaveLength(1024);
    expect(code(() => asNamespace("n".repeat(ID_MAX_BYTES.checkpoint_ns + 1)))).toBe(
      "INVALID_INPUT",
    );
    expect(code(() => asId("x".repeat(3_000_000), "thread_id", false))).toBe("INVALID_INPUT");
  });

  it("accepts safe integer limits and refuses 1e20, NaN and non-numbers", () => {
    expect(asLimit(undefined)).toBeUndefined();
    expect(asLimit(3)).toBe(3);
    expect(asLimit(2.7)).toBe(2);
    expect(asLimit(-4)).toBe(0);
    expect(asLimit(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of [1e20, Number.MAX_SAFE_INTEGER + 2, Number.NaN, Infinity, "5", 5n]) {
      expect(code(() => asLimit(bad))).toBe("INVALID_INPUT");
    }
  });

  it("refuses metadata filters nested deeper than the limit or holding BigInt, function or Symbol", () => {
    expect(filterJson(undefined)).toBeUndefined();
    expect(filterJson({})).toBeUndefined();
    expect(filterJson({ source: "input", tags: ["a"] })).toBe('{"source":"input","tags":["a"]}');
    expect(filterJson(nested(FILTER_MAX_DEPTH))).toBeDefined();
    expect(code(() => filterJson(nested(FILTER_MAX_DEPTH + 1)))).toBe("INVALID_INPUT");
    expect(code(() => filterJson(nested(5000)))).toBe("INVALID_INPUT");
    expect(code(() => filterJson({ n: 1n }))).toBe("INVALID_INPUT");
    expect(code(() => filterJson({ f: () => 1 }))).toBe("INVALID_INPUT");
    expect(code(() => filterJson({ s: Symbol("s") }))).toBe("INVALID_INPUT");
    expect(code(() => filterJson("source"))).toBe("INVALID_INPUT");
  });

  it("finds functions, Symbols and BigInts anywhere in a value, through toJSON, arrays and maps", () => {
    expect(code(() => assertStorable({ a: [1, { b: "x" }], d: new Date() }, "put", "v"))).toBe(
      undefined,
    );
    expect(code(() => assertStorable({ a: [1, { b: () => 1 }] }, "put", "v"))).toBe(
      "INVALID_INPUT",
    );
    expect(code(() => assertStorable([Symbol("x")], "put", "v"))).toBe("INVALID_INPUT");
    expect(code(() => assertStorable(new Map([["k", 2n]]), "put", "v"))).toBe("INVALID_INPUT");
    const withToJson = { toJSON: () => ({ inner: () => 1 }) };
    expect(code(() => assertStorable(withToJson, "put", "v"))).toBe("INVALID_INPUT");
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    expect(code(() => assertStorable(circular, "put", "v"))).toBe(undefined);
    let message = "";
    try {
      assertStorable({ messages: [{ content: "hi" }, { content: () => 1 }] }, "put", "value");
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("value.messages[1].content is a function");
  });
});

import { randomBytes } from "node:crypto";
import { deflateRawSync } from "node:zlib";
import {
  DICTIONARY_V1,
  compress,
  decompressToText,
} from "../../../../src/checkpoint/postgres/compression.js";
import { toPayload } from "../../../../src/checkpoint/postgres/codec.js";

const message = (text: string) =>
  JSON.stringify([
    {
      lc: 1,
      type: "constructor",
      id: ["langchain_core", "messages", "HumanMessage"],
      kwargs: { content: text, additional_kwargs: {}, response_metadata: {}, id: "m-1" },
    },
  ]);

describe("compression", () => {
  it("round-trips small and large payloads", () => {
    for (const text of ["weather in paris tomorrow ".repeat(12), "a b c d e f g ".repeat(2000)]) {
      const bytes = Buffer.from(message(text));
      const packed = compress(bytes);
      expect(packed).toBeDefined();
      expect(packed!.byteLength).toBeLessThan(bytes.byteLength * 0.8);
      expect(decompressToText(packed!)).toBe(bytes.toString("utf8"));
    }
  });

  it("reads payloads that inflate to many times their output buffer (sized from the compressed bytes)", () => {
    // ~1 MB of repeated text deflates about 1000-fold: the output takes many rounds of the
    // inflate call's buffer, whose size follows the compressed bytes. Multi-byte characters
    // must survive the chunk boundaries.
    for (const text of [message("abé中 ".repeat(250_000)), message("x".repeat(70_000))]) {
      const packed = compress(Buffer.from(text))!;
      expect(packed.byteLength * 50).toBeLessThan(Buffer.byteLength(text));
      expect(decompressToText(packed)).toBe(text);
    }
  });

  it("leaves tiny or incompressible payloads alone", () => {
    expect(compress(Buffer.from("null"))).toBeUndefined();
    const random = randomBytes(600);
    expect(compress(random)).toBeUndefined();
  });

  it("still reads rows written with the default 32 KB window", () => {
    // Rows written before small payloads got the small window.
    const text = message("the same old row ".repeat(20));
    const old = deflateRawSync(Buffer.from(text), { level: 6, dictionary: DICTIONARY_V1 });
    expect(decompressToText(old)).toBe(text);
  });

  it("a text compressed again (a reply stored as a write, then as a delta) travels as the same bytes", () => {
    const text = message("the reply of this turn, long enough to be worth compressing");
    const fresh = compress(Buffer.from(text))!.toString("base64");
    const first = toPayload("json", text, true);
    const again = toPayload("delta", `${text}`, true);
    expect(first).toEqual({ type: "json+z1", txt: null, b64: fresh });
    expect(again).toEqual({ type: "delta+z1", txt: null, b64: fresh });
    expect(decompressToText(Buffer.from(again.b64!, "base64"))).toBe(text);
    // Not worth compressing, the second time too.
    expect(toPayload("json", '"short"', true)).toEqual({ type: "json", txt: '"short"', b64: null });
    expect(toPayload("json", '"short"', true)).toEqual({ type: "json", txt: '"short"', b64: null });
  });
});

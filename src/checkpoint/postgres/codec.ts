import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";
import { assertStorable } from "../config-ids.js";
import { COMPRESSED_SUFFIX, compress, decompressToText } from "./compression.js";
import { FALLBACK, fastDecode } from "./fast-decode.js";
import { fastEncode } from "./fast-encode.js";

/** A serialized value as the statements send and return it: JSON as text, anything else base64. */
export interface Payload {
  type: string;
  txt: string | null;
  b64: string | null;
}

const textDecoder = new TextDecoder();
const NUL_ESCAPE = "\\u0000";

/** Texts up to this length are remembered with their compressed form (see {@link packedText}). */
const PACKED_MEMO_MAX_TEXT = 8192;
/** Texts remembered at most: a turn's repeat comes a few dozen compressions later at 50 chats. */
const PACKED_MEMO_SIZE = 128;
/** Recent JSON texts and their compressed base64 (null: not worth compressing), oldest first. */
const packedMemo = new Map<string, string | null>();

/**
 * The base64 of `text` compressed, or null when compression does not pay. A chat turn stores
 * its reply twice (as the node's pending write, then as the delta of `messages` in the next
 * put), the same JSON text both times: deflate is the costliest step of a payload (a deflate
 * state is set up per call), so the last few short texts are remembered with their result. The
 * text itself is the key: an equal text gets the same bytes it would have been compressed to.
 */
function packedText(text: string): string | null {
  const known = packedMemo.get(text);
  if (known !== undefined) return known;
  const packed = compress(Buffer.from(text));
  const b64 = packed ? packed.toString("base64") : null;
  if (text.length <= PACKED_MEMO_MAX_TEXT) {
    if (packedMemo.size >= PACKED_MEMO_SIZE) packedMemo.delete(packedMemo.keys().next().value!);
    packedMemo.set(text, b64);
  }
  return b64;
}

/**
 * Serializer output as the (type, text, base64) triple the statements send. JSON travels as text;
 * with `compressed`, JSON worth compressing travels (and is stored) deflated, as `<type>+z1`.
 */
export function toPayload(type: string, data: Uint8Array | string, compressed: boolean): Payload {
  if (compressed && (type === "json" || type === "delta")) {
    const b64 =
      typeof data === "string" ? packedText(data) : (compress(data)?.toString("base64") ?? null);
    if (b64 !== null) return { type: `${type}${COMPRESSED_SUFFIX}`, txt: null, b64 };
  }
  if (type === "json" || type === "delta")
    return { type, txt: typeof data === "string" ? data : textDecoder.decode(data), b64: null };
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  return {
    type,
    txt: null,
    b64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
  };
}

/** The serializer's input for a stored payload: the text, or the bytes of the base64. */
export function payloadData(txt: string | null, b64: string | null): string | Uint8Array {
  if (txt !== null) return txt;
  return b64 === null ? new Uint8Array() : new Uint8Array(Buffer.from(b64, "base64"));
}

/** jsonb cannot hold U+0000: drop it instead of failing the whole checkpoint (22P05). */
export function withoutNul(json: string): string {
  return json.includes(NUL_ESCAPE) ? JSON.stringify(stripNul(JSON.parse(json))) : json;
}

/** Removes NUL characters (which jsonb cannot hold) from every string and key of a JSON value. */
function stripNul(value: unknown): unknown {
  if (typeof value === "string") return value.replace(/\0/g, "");
  if (Array.isArray(value)) return value.map(stripNul);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k.replace(/\0/g, ""),
        stripNul(v),
      ]),
    );
  }
  return value;
}

/** `[type, data]` as the serializer's `dumpsTyped` returns it. */
export type Encoded = [string, Uint8Array | string];

/**
 * Encodes and decodes stored values. With the default serializer, plain JSON and LangChain
 * messages skip the serializer's async path (fast-encode.ts / fast-decode.ts produce and read
 * the same bytes); a custom serializer is always used as is.
 */
export class PayloadCodec {
  /**
   * @param serde the saver's serializer.
   * @param fastJson true when `serde` is the default JsonPlusSerializer.
   */
  constructor(
    private readonly serde: SerializerProtocol,
    readonly fastJson: boolean,
  ) {}

  /**
   * The serializer's output for `value` without awaiting, when the default serializer is in use
   * and the value is plain JSON (see fast-encode.ts); undefined means "ask the serializer".
   * Bytes are never produced here, so a Uint8Array value (type "bytes") always falls through.
   */
  encodeSync(value: unknown): [string, string] | undefined {
    if (!this.fastJson || value instanceof Uint8Array) return undefined;
    const text = fastEncode(value);
    return text === undefined ? undefined : ["json", text];
  }

  /**
   * The serializer's own output for `value` (when {@link encodeSync} declined). With the default
   * serializer a function, Symbol or BigInt is INVALID_INPUT here: JsonPlusSerializer would drop
   * or garble it, so the put would be acknowledged and read back different.
   */
  async dumps(value: unknown): Promise<Encoded> {
    if (this.fastJson) assertStorable(value, "put", "channel value");
    return this.serde.dumpsTyped(value);
  }

  /** Decodes one stored payload; synchronous for plain JSON and LangChain messages. */
  decode(type: string, txt: string | null, b64: string | null): unknown {
    if (type.endsWith(COMPRESSED_SUFFIX)) {
      // Inflated at once: the decoded bytes need no copy of their own (payloadData's).
      txt = decompressToText(Buffer.from(b64 ?? "", "base64"));
      b64 = null;
      type = type.slice(0, -COMPRESSED_SUFFIX.length);
    }
    if (type === "delta") type = "json";
    if (this.fastJson && type === "json" && txt !== null) {
      const value = fastDecode(txt);
      if (value !== FALLBACK) return value;
    }
    return this.serde.loadsTyped(type, payloadData(txt, b64));
  }

  /**
   * Checkpoint metadata as the JSON text of the jsonb column (NUL characters dropped), without
   * awaiting when the fast encoder takes it; undefined means "use {@link metadataJson}".
   */
  metadataJsonSync(metadata: unknown): string | undefined {
    const fast = this.encodeSync(metadata ?? {});
    return fast ? withoutNul(fast[1]) : undefined;
  }

  /** Checkpoint metadata as the JSON text of the jsonb column, through the serializer. */
  async metadataJson(metadata: unknown): Promise<string> {
    if (this.fastJson) assertStorable(metadata, "put", "metadata");
    const [, bytes] = await this.serde.dumpsTyped(metadata ?? {});
    return withoutNul(textDecoder.decode(bytes));
  }
}

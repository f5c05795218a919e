import { deflateRawSync, inflateRawSync } from "node:zlib";

/**
 * Payload compression for `storage: "delta"`. Postgres compresses a value only when its row
 * exceeds ~2 KB, so the typical checkpoint payload (one chat message, 300-800 bytes) is stored
 * raw. Raw deflate with a preset dictionary of the serializer's JSON skeleton (LangChain message
 * envelopes and their usual keys) shrinks such payloads to roughly half.
 *
 * The dictionary is part of the storage format: `+z1` in a row's `type` means "raw deflate with
 * DICTIONARY_V1". A new dictionary gets a new suffix; old rows stay readable.
 */
export const COMPRESSED_SUFFIX = "+z1";

export const DICTIONARY_V1 = Buffer.from(
  [
    '{"lc":1,"type":"constructor","id":["langchain_core","messages","SystemMessage"],"kwargs":{"content":"","additional_kwargs":{},"response_metadata":{}}}',
    '{"lc":1,"type":"constructor","id":["langchain_core","messages","ToolMessage"],"kwargs":{"content":"","tool_call_id":"call_","name":"","status":"success","artifact":null,"additional_kwargs":{},"response_metadata":{},"id":""}}',
    '{"lc":1,"type":"constructor","id":["langchain_core","messages","AIMessage"],"kwargs":{"content":"","tool_calls":[{"name":"","args":{},"id":"call_","type":"tool_call"}],"invalid_tool_calls":[],"additional_kwargs":{},"response_metadata":{"model_provider":"openai","finish_reason":"stop","model_name":"","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}},"usage_metadata":{"input_tokens":0,"output_tokens":0,"total_tokens":0,"input_token_details":{},"output_token_details":{}},"id":"run-"}}',
    '{"lc":1,"type":"constructor","id":["langchain_core","messages","HumanMessage"],"kwargs":{"content":"","additional_kwargs":{},"response_metadata":{},"id":""}}',
  ].join(","),
);

/** Payloads shorter than this are not worth a deflate call. */
const MIN_BYTES = 128;

/**
 * Below this size a 2 KB window (which still holds the whole dictionary) loses nothing, and the
 * deflate state it needs is a fraction of the default's: a one-message payload compresses in
 * about half the time, to the same bytes. Any window decodes with the default inflate.
 */
const SMALL_WINDOW_BELOW = 2048;

/** The compressed bytes, or undefined when compression would not save at least a fifth. */
export function compress(bytes: Uint8Array): Buffer | undefined {
  if (bytes.byteLength < MIN_BYTES) return undefined;
  const out = deflateRawSync(
    bytes,
    bytes.byteLength < SMALL_WINDOW_BELOW
      ? { level: 6, windowBits: 11, memLevel: 2, dictionary: DICTIONARY_V1 }
      : { level: 6, dictionary: DICTIONARY_V1 },
  );
  return out.byteLength <= bytes.byteLength * 0.8 ? out : undefined;
}

/**
 * Output buffer of one inflate call, from the compressed size: chat payloads inflate to 2-5 times
 * their compressed bytes. zlib's default (16 KiB) allocates a fresh 16 KiB buffer per call,
 * most of a one-message row's inflate time and garbage; below 4 KiB Node takes the buffer from
 * its shared pool. A larger output only takes more rounds of the same call.
 */
function inflateChunkSize(compressedBytes: number): number {
  return Math.min(64 * 1024, Math.max(1024, compressedBytes * 4));
}

/** Inverse of {@link compress}: the original UTF-8 text. */
export function decompressToText(data: Uint8Array): string {
  return inflateRawSync(data, {
    dictionary: DICTIONARY_V1,
    chunkSize: inflateChunkSize(data.byteLength),
  }).toString("utf8");
}

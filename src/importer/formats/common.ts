import { ThreadlineError } from "../../errors.js";
import { decodePythonMsgpack } from "../msgpack.js";
import {
  decodeBase64Strict,
  decodeUtf8,
  EMPTY_NS,
  normalizeId,
  normalizeNs,
  normalizeValue,
  parseJson,
  parseMetadata,
  toEpochMs,
  unsupported,
  type ValueFlags,
} from "../values.js";
import { EMPTY, type RawRecord, type SourceCheckpoint, type SourceFormat } from "../types.js";

/** Fields of a checkpoint that are not carried into the Postgres checkpoint JSON. */
const DROPPED_CHECKPOINT_FIELDS = new Set([
  "channel_values",
  "channel_versions",
  "versions_seen",
  // Python extras: the serializer tag and the pre-v4 pending sends (JS v4 has neither).
  "type",
  "pending_sends",
]);

/** LangGraph 0.4's task channel artefact (`[[],[]]`) that LangGraph 1.x does not store. */
const TASKS_ARTEFACT = "__pregel_tasks";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A required string field of a document, or IMPORT_RECORD_INVALID naming it. */
export function requireString(
  doc: Record<string, unknown>,
  field: string,
  threadId?: string,
): string {
  const v = doc[field];
  if (typeof v !== "string") {
    throw new ThreadlineError("IMPORT_RECORD_INVALID", `document has no string field ${field}`, {
      details: threadId === undefined ? {} : { threadId },
    });
  }
  return v;
}

/** Attaches the thread to an error raised while decoding one of its records. */
export function withThread<T>(threadId: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ThreadlineError) {
      throw new ThreadlineError(err.code, err.message, {
        cause: err.cause,
        details: { ...err.details, threadId },
      });
    }
    throw new ThreadlineError("IMPORT_RECORD_INVALID", (err as Error).message, {
      cause: err,
      details: { threadId },
    });
  }
}

/** Parses a JSON record (RedisJSON doc or its STRING copy) into an object. */
export function parseDoc(record: RawRecord): Record<string, unknown> | undefined {
  if (record.kind !== "json") return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(record.text) as unknown;
  } catch {
    return undefined;
  }
  // JSON.GET with no path returns the root value; some RedisJSON versions wrap it in an array.
  if (Array.isArray(doc) && doc.length === 1 && isObject(doc[0])) doc = doc[0];
  return isObject(doc) ? doc : undefined;
}

/**
 * Builds a SourceCheckpoint from a decoded checkpoint object (the value LangGraph's `put`
 * received). Values are normalised here so a bad value rejects its thread early.
 */
export function buildCheckpoint(args: {
  key: string;
  format: SourceFormat;
  threadId: string;
  ns: string;
  id: string;
  parentId: string | null;
  checkpoint: Record<string, unknown>;
  metadata: unknown;
  fallbackTs?: unknown;
  blobsWin?: boolean;
  flags: ValueFlags;
}): SourceCheckpoint {
  const cp = args.checkpoint;
  const base: SourceCheckpoint["base"] = { v: typeof cp.v === "number" ? cp.v : 1, ts: "" };
  for (const [k, v] of Object.entries(cp)) if (!DROPPED_CHECKPOINT_FIELDS.has(k)) base[k] = v;
  base.id = args.id;
  if (typeof base.ts !== "string" || base.ts === "") {
    const ms = toEpochMs(args.fallbackTs);
    base.ts = ms === undefined ? new Date(0).toISOString() : new Date(ms).toISOString();
  }
  if (Array.isArray(cp.pending_sends) && cp.pending_sends.length > 0) {
    args.flags.set("pending-sends-dropped", (args.flags.get("pending-sends-dropped") ?? 0) + 1);
  }
  const inlineValues = new Map<string, unknown>();
  if (isObject(cp.channel_values)) {
    for (const [channel, value] of Object.entries(cp.channel_values)) {
      if (channel === TASKS_ARTEFACT) continue;
      // Normalised later, and only if this checkpoint's values are imported: with
      // `--history latest` most checkpoints of a thread are read for their ids alone.
      inlineValues.set(channel, value);
    }
  }
  return {
    key: args.key,
    format: args.format,
    threadId: args.threadId,
    ns: args.ns,
    id: args.id,
    parentId: args.parentId,
    base,
    channelVersions: isObject(cp.channel_versions) ? cp.channel_versions : {},
    versionsSeen: cp.versions_seen ?? {},
    inlineValues,
    metadata: parseMetadata(args.metadata, args.flags),
    activityMs: toEpochMs(cp.ts) ?? toEpochMs(args.fallbackTs),
    blobsWin: args.blobsWin ?? false,
  };
}

/** What JSON text can start with (after whitespace): anything else makes JSON.parse throw. */
const JSON_START = /^\s*[[{"\-0-9tfn]/;
const NOT_JSON = Symbol("not JSON");

/**
 * A value written by the Python serializer, given its `type` tag and payload as stored by
 * langgraph-checkpoint-redis: JSON text (<= 0.1.x), base64 of the serializer's bytes (>= 0.2),
 * `""` for null, base64 msgpack when the value held bytes. JSON is tried first, then strict
 * base64, since 0.1.x and 0.2 data can sit side by side.
 */
export function decodePythonTyped(type: unknown, payload: unknown, flags: ValueFlags): unknown {
  switch (type) {
    case "empty":
      return EMPTY;
    case "null":
      return null;
    case "pickle":
      throw unsupported("value is a Python pickle");
    case "msgpack":
      if (typeof payload !== "string") throw unsupported("msgpack value is not base64 text");
      return normalizeValue(decodePythonMsgpack(decodeBase64Strict(payload)), flags);
    case "bytes":
    case "bytearray":
    case "base64":
      if (typeof payload !== "string") throw unsupported("bytes value is not base64 text");
      return normalizeValue(decodeBase64Strict(payload), flags);
    case "json":
    case undefined: {
      if (typeof payload !== "string") return normalizeValue(payload, flags);
      let parsed: unknown = NOT_JSON;
      // Only text that can start a JSON value is tried as JSON: base64 of an object or list
      // (`eyJ`, `W3`) cannot, and a JSON.parse that throws costs far more than the check.
      if (JSON_START.test(payload)) {
        try {
          parsed = JSON.parse(payload) as unknown;
        } catch {
          // Base64 that happens to start like JSON (a digit, `t`, `f`, `n`).
        }
      }
      if (parsed === NOT_JSON) parsed = parseJson(decodeUtf8(decodeBase64Strict(payload)), "value");
      return normalizeValue(parsed, flags);
    }
    default:
      throw unsupported(`unknown serialization type ${JSON.stringify(type)}`);
  }
}

/**
 * A value stored as serializer bytes in a hash field (how-to saver, checkpoint-redis after the
 * comma-byte decoding): `json` text, Python `msgpack`, raw `bytes`, `null`.
 */
export function decodeTypedBytes(type: string, bytes: Uint8Array, flags: ValueFlags): unknown {
  switch (type) {
    case "json":
      return normalizeValue(parseJson(decodeUtf8(bytes), "value"), flags);
    case "msgpack":
      return normalizeValue(decodePythonMsgpack(bytes), flags);
    case "null":
      return null;
    case "bytes":
    case "bytearray":
      return normalizeValue(bytes, flags);
    case "empty":
      return EMPTY;
    case "pickle":
      throw unsupported("value is a Python pickle");
    default:
      throw unsupported(`unknown serialization type ${JSON.stringify(type)}`);
  }
}

/** The namespace of a doc (`__empty__` and missing mean root). */
export function docNs(doc: Record<string, unknown>): string {
  return normalizeNs(doc.checkpoint_ns ?? EMPTY_NS);
}

export { normalizeId };

/** A hash field as text (hash values are read as bytes so binary msgpack survives). */
export function fieldText(fields: Map<string, Buffer>, name: string): string | undefined {
  const v = fields.get(name);
  return v === undefined ? undefined : v.toString("utf8");
}

/** A JSON object field of a doc (the checkpoint), or IMPORT_RECORD_INVALID. */
export function requireObject(
  doc: Record<string, unknown>,
  field: string,
): Record<string, unknown> {
  const v = doc[field];
  if (!isObject(v)) throw unsupported(`document has no object field ${field}`);
  return v;
}

export { isObject };

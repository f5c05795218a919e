import type { DecodedRecord, FormatAdapter, RawRecord, SourceFormat } from "../types.js";
import { EMPTY } from "../types.js";
import {
  decodeCommaBytes,
  isCommaBytes,
  normalizeId,
  parseMetadata,
  unsupported,
  type ValueFlags,
} from "../values.js";
import { buildCheckpoint, decodeTypedBytes, fieldText, isObject, withThread } from "./common.js";

/**
 * Readers for the hash-based community layouts: the LangGraph how-to saver (`:` or `$`
 * separators; `json` or Python `msgpack` values) and the npm `checkpoint-redis` package (same
 * `:` keys, values stored as comma-separated decimal bytes). Their hashes hold no thread id or
 * task id, so these formats are the only ones whose ids come from the key: the thread is the
 * first segment, the task id and index the last two, and the namespace everything between
 * (namespaces may contain `:`, thread ids must not). The checkpoint id is still taken from the
 * decoded checkpoint.
 */

interface KeyParts {
  threadId: string;
  ns: string;
  checkpointId: string;
  taskId?: string;
  idx?: number;
}

function splitKey(key: string, sep: string, prefix: string, writes: boolean): KeyParts | undefined {
  const parts = key.slice(prefix.length).split(sep);
  const tail = writes ? 3 : 1;
  if (parts.length < 2 + tail) return undefined;
  const threadId = parts[0]!;
  const rest = parts.slice(1);
  const ids = rest.splice(rest.length - tail, tail);
  const out: KeyParts = { threadId, ns: rest.join(sep), checkpointId: ids[0]! };
  if (writes) {
    out.taskId = ids[1]!;
    out.idx = Number(ids[2]);
    if (!Number.isInteger(out.idx)) return undefined;
  }
  return out;
}

/** Whether a hash value is checkpoint-redis's comma-byte text (multi-byte values have commas). */
function looksCommaEncoded(fields: Map<string, Buffer>, field: string): boolean {
  const text = fieldText(fields, field);
  return text !== undefined && text.includes(",") && isCommaBytes(text);
}

function decodeCheckpointHash(
  format: SourceFormat,
  record: RawRecord & { kind: "hash" },
  parts: KeyParts,
  bytesOf: (field: string) => Uint8Array | undefined,
): DecodedRecord {
  return withThread(parts.threadId, () => {
    const flags: ValueFlags = new Map();
    const type = fieldText(record.fields, "type") ?? "json";
    const raw = bytesOf("checkpoint");
    if (raw === undefined) throw unsupported("hash has no checkpoint field");
    const checkpoint = decodeTypedBytes(type, raw, flags);
    if (!isObject(checkpoint)) throw unsupported("checkpoint field does not decode to an object");
    const metaBytes = bytesOf("metadata");
    const metaType = fieldText(record.fields, "metadata_type") ?? "json";
    const metadata =
      metaBytes === undefined
        ? {}
        : parseMetadata(decodeTypedBytes(metaType, metaBytes, flags), flags);
    const id = typeof checkpoint.id === "string" ? checkpoint.id : parts.checkpointId;
    return {
      kind: "checkpoint",
      format,
      flags,
      checkpoint: buildCheckpoint({
        key: record.key,
        format,
        threadId: parts.threadId,
        ns: parts.ns,
        id,
        parentId: normalizeId(fieldText(record.fields, "parent_checkpoint_id")),
        checkpoint,
        metadata,
        flags,
      }),
    };
  });
}

function decodeWriteHash(
  format: SourceFormat,
  record: RawRecord & { kind: "hash" },
  parts: KeyParts,
  bytesOf: (field: string) => Uint8Array | undefined,
): DecodedRecord {
  return withThread(parts.threadId, () => {
    const flags: ValueFlags = new Map();
    const channel = fieldText(record.fields, "channel");
    if (channel === undefined) throw unsupported("write hash has no channel field");
    const type = fieldText(record.fields, "type") ?? "json";
    const load = (f: ValueFlags): unknown => {
      const raw = bytesOf("value");
      const value = raw === undefined ? null : decodeTypedBytes(type, raw, f);
      return value === EMPTY ? null : value;
    };
    return {
      kind: "write",
      format,
      flags,
      write: {
        key: record.key,
        threadId: parts.threadId,
        ns: parts.ns,
        checkpointId: parts.checkpointId,
        taskId: parts.taskId!,
        taskPath: "",
        idx: parts.idx!,
        channel,
        load,
      },
    };
  });
}

function hashAdapter(format: SourceFormat, sep: string, commaBytes: boolean): FormatAdapter {
  const cpPrefix = `checkpoint${sep}`;
  const wPrefix = `writes${sep}`;
  const bytesOf =
    (record: RawRecord & { kind: "hash" }) =>
    (field: string): Uint8Array | undefined => {
      const v = record.fields.get(field);
      if (v === undefined) return undefined;
      return commaBytes ? decodeCommaBytes(v.toString("utf8")) : new Uint8Array(v);
    };
  const isOurs = (record: RawRecord): record is RawRecord & { kind: "hash" } => {
    if (record.kind !== "hash") return false;
    if (record.key.startsWith(cpPrefix)) {
      if (!record.fields.has("checkpoint")) return false;
      if (sep !== ":") return true;
      const comma =
        record.fields.has("metadata_type") || looksCommaEncoded(record.fields, "checkpoint");
      return comma === commaBytes;
    }
    if (record.key.startsWith(wPrefix)) {
      if (!record.fields.has("channel")) return false;
      if (sep !== ":") return true;
      return looksCommaEncoded(record.fields, "value") === commaBytes;
    }
    return false;
  };
  return {
    format,
    prefixes: [cpPrefix, wPrefix],
    detect: (record) => isOurs(record),
    decode: (record) => {
      if (!isOurs(record)) throw unsupported(`record is not a ${format} hash`);
      const writes = record.key.startsWith(wPrefix);
      const parts = splitKey(record.key, sep, writes ? wPrefix : cpPrefix, writes);
      if (!parts) throw unsupported(`key does not have the ${format} layout`);
      return writes
        ? decodeWriteHash(format, record, parts, bytesOf(record))
        : decodeCheckpointHash(format, record, parts, bytesOf(record));
    },
  };
}

/** The LangGraph how-to saver with `:` separators (the notebook's first revisions). */
export const howtoColonAdapter = hashAdapter("howto-colon", ":", false);
/** The LangGraph how-to saver with `$` separators (after langgraph#2712). */
export const howtoDollarAdapter = hashAdapter("howto-dollar", "$", false);
/** npm `checkpoint-redis` (levivoelz): `:` keys, comma-separated byte values. */
export const checkpointRedisAdapter = hashAdapter("checkpoint-redis", ":", true);

import {
  EMPTY,
  type DecodeOptions,
  type DecodedRecord,
  type FormatAdapter,
  type RawRecord,
  type SourceFormat,
} from "../types.js";
import { normalizeValue, toIntVersion, unsupported, type ValueFlags } from "../values.js";
import {
  buildCheckpoint,
  parseDoc,
  decodePythonTyped,
  docNs,
  isObject,
  normalizeId,
  requireObject,
  requireString,
  withThread,
} from "./common.js";

/**
 * Readers for the two official savers, which share key prefixes (`checkpoint:`,
 * `checkpoint_blob:`, `checkpoint_write:`) but not documents: the JS saver stores native JSON
 * values with JS LangChain ids and integer versions; the Python saver stores a serializer-tagged
 * checkpoint (`"type":"json"`, `pending_sends`), string versions and Python ids. Every id comes
 * from the document: channel names and namespaces contain `:`, so keys cannot be split.
 */

const CHECKPOINT = "checkpoint:";
const BLOB = "checkpoint_blob:";
const WRITE = "checkpoint_write:";

function isPythonCheckpoint(doc: Record<string, unknown>): boolean {
  const cp = doc.checkpoint;
  return isObject(cp) && (typeof cp.type === "string" || Array.isArray(cp.pending_sends));
}

function isCheckpointDoc(
  record: RawRecord,
  doc: Record<string, unknown> | undefined,
): doc is Record<string, unknown> {
  return (
    record.kind === "json" &&
    record.key.startsWith(CHECKPOINT) &&
    doc !== undefined &&
    typeof doc.thread_id === "string" &&
    isObject(doc.checkpoint)
  );
}

function decodeCheckpointDoc(
  format: SourceFormat,
  record: RawRecord,
  doc: Record<string, unknown>,
  parentKeyed: boolean,
): DecodedRecord {
  const threadId = requireString(doc, "thread_id");
  return withThread(threadId, () => {
    const flags: ValueFlags = new Map();
    const checkpoint = requireObject(doc, "checkpoint");
    const id =
      typeof checkpoint.id === "string"
        ? checkpoint.id
        : requireString(doc, "checkpoint_id", threadId);
    let parentId = normalizeId(doc.parent_checkpoint_id);
    if (parentKeyed) {
      // <= 0.0.8 stored each checkpoint under the config's id, i.e. its parent's
      // (langgraph-redis#71): the doc's checkpoint_id is the parent, checkpoint.id the real id.
      const docId = normalizeId(doc.checkpoint_id);
      parentId = docId !== null && docId !== id ? docId : null;
    }
    return {
      kind: "checkpoint",
      format,
      flags,
      checkpoint: buildCheckpoint({
        key: record.key,
        format,
        threadId,
        ns: docNs(doc),
        id,
        parentId,
        checkpoint,
        metadata: doc.metadata,
        fallbackTs: doc.checkpoint_ts,
        blobsWin: parentKeyed,
        flags,
      }),
    };
  });
}

/**
 * The document of a blob or write, again, when its value is needed. A record decoded as it is
 * read waits in memory until its thread's turn, so it keeps only its text and is parsed again
 * then: parsed trees held for the run made the garbage collector the largest cost of an import
 * (decision I10). A `transient` record (decoded when its thread is converted, decision I12) keeps
 * the document it was decoded from, which dies with the thread: one parse. The loaders are built
 * by separate functions so their closures capture nothing but this getter (a closure created
 * inside the decode functions would keep their parsed `doc` alive).
 */
type DocSource = () => Record<string, unknown>;

function docSource(
  record: RawRecord,
  doc: Record<string, unknown>,
  options: DecodeOptions | undefined,
): DocSource {
  return record.kind === "json" && options?.transient !== true ? reparse(record.text) : () => doc;
}

function reparse(text: string): DocSource {
  return () => {
    const doc = parseDoc({ key: "", kind: "json", text });
    if (doc === undefined) throw unsupported("document is not valid JSON");
    return doc;
  };
}

function blobLoader(source: DocSource): (flags: ValueFlags) => unknown {
  return (f) => {
    const doc = source();
    if ("blob" in doc) return decodePythonTyped(doc.type, doc.blob, f);
    if (doc.type === "empty" || !("value" in doc)) return EMPTY;
    return normalizeValue(doc.value, f);
  };
}

function writeLoader(source: DocSource): (flags: ValueFlags) => unknown {
  return (f) => {
    const doc = source();
    // JS >= 1.0.9 may omit `value` (RedisJSON drops undefined): it was undefined.
    const value =
      "blob" in doc ? decodePythonTyped(doc.type, doc.blob, f) : normalizeValue(doc.value, f);
    return value === EMPTY ? null : value;
  };
}

function decodeBlobDoc(
  format: SourceFormat,
  record: RawRecord,
  doc: Record<string, unknown>,
  options: DecodeOptions | undefined,
): DecodedRecord {
  const threadId = requireString(doc, "thread_id");
  return withThread(threadId, () => {
    const flags: ValueFlags = new Map();
    const channel = requireString(doc, "channel", threadId);
    const rawVersion = doc.version;
    if (toIntVersion(rawVersion) === undefined)
      throw unsupported(`blob version ${JSON.stringify(rawVersion)} is not a version`);
    const load = blobLoader(docSource(record, doc, options));
    return {
      kind: "blob",
      format,
      flags,
      blob: {
        key: record.key,
        threadId,
        ns: docNs(doc),
        channel,
        version: String(rawVersion),
        load,
      },
    };
  });
}

function decodeWriteDoc(
  format: SourceFormat,
  record: RawRecord,
  doc: Record<string, unknown>,
  options: DecodeOptions | undefined,
): DecodedRecord {
  const threadId = requireString(doc, "thread_id");
  return withThread(threadId, () => {
    const flags: ValueFlags = new Map();
    const idx = typeof doc.idx === "number" ? doc.idx : Number(doc.idx);
    if (!Number.isInteger(idx)) throw unsupported("write has no integer idx");
    const load = writeLoader(docSource(record, doc, options));
    return {
      kind: "write",
      format,
      flags,
      write: {
        key: record.key,
        threadId,
        ns: docNs(doc),
        checkpointId: requireString(doc, "checkpoint_id", threadId),
        taskId: requireString(doc, "task_id", threadId),
        taskPath: typeof doc.task_path === "string" ? doc.task_path : "",
        idx,
        channel: requireString(doc, "channel", threadId),
        load,
      },
    };
  });
}

function isJsonDoc(
  record: RawRecord,
  doc: Record<string, unknown> | undefined,
  prefix: string,
): doc is Record<string, unknown> {
  return (
    record.kind === "json" &&
    record.key.startsWith(prefix) &&
    doc !== undefined &&
    typeof doc.thread_id === "string"
  );
}

/** langgraph-checkpoint-redis <= 0.0.8: no `checkpoint_ts`, parent-keyed ids, blob docs. */
export const python00Adapter: FormatAdapter = {
  format: "python-0.0",
  prefixes: [CHECKPOINT, BLOB],
  detect: (record, doc) =>
    (isCheckpointDoc(record, doc) && isPythonCheckpoint(doc) && !("checkpoint_ts" in doc)) ||
    (isJsonDoc(record, doc, BLOB) && "blob" in doc),
  decode: (record, doc, options) =>
    record.key.startsWith(BLOB)
      ? decodeBlobDoc("python-0.0", record, doc!, options)
      : decodeCheckpointDoc("python-0.0", record, doc!, true),
};

/** langgraph-checkpoint-redis >= 0.1 `RedisSaver` (and its writes, which every version shares). */
export const pythonAdapter: FormatAdapter = {
  format: "python",
  prefixes: [CHECKPOINT, WRITE],
  detect: (record, doc) =>
    (isCheckpointDoc(record, doc) && isPythonCheckpoint(doc) && "parent_checkpoint_id" in doc) ||
    (isJsonDoc(record, doc, WRITE) && "blob" in doc),
  decode: (record, doc, options) =>
    record.key.startsWith(WRITE)
      ? decodeWriteDoc("python", record, doc!, options)
      : decodeCheckpointDoc("python", record, doc!, false),
};

/** langgraph-checkpoint-redis >= 0.1 `ShallowRedisSaver`: one doc per thread and namespace. */
export const pythonShallowAdapter: FormatAdapter = {
  format: "python-shallow",
  prefixes: [CHECKPOINT],
  detect: (record, doc) =>
    isCheckpointDoc(record, doc) && isPythonCheckpoint(doc) && !("parent_checkpoint_id" in doc),
  decode: (record, doc) => decodeCheckpointDoc("python-shallow", record, doc!, false),
};

/** @langchain/langgraph-checkpoint-redis `ShallowRedisSaver` (`checkpoint:{t}:{ns}:shallow`). */
export const jsShallowAdapter: FormatAdapter = {
  format: "js-shallow",
  prefixes: [CHECKPOINT],
  // The key suffix only labels the format for the report; ids still come from the document.
  detect: (record, doc) =>
    isCheckpointDoc(record, doc) && !isPythonCheckpoint(doc) && record.key.endsWith(":shallow"),
  decode: (record, doc) => decodeCheckpointDoc("js-shallow", record, doc!, false),
};

/**
 * @langchain/langgraph-checkpoint-redis `RedisSaver`: >= 1.0.10 with `checkpoint_blob:` docs,
 * <= 1.0.9 with only the changed channels inline (rebuilt from ancestors by the assembler).
 */
export const jsAdapter: FormatAdapter = {
  format: "js",
  prefixes: [CHECKPOINT, BLOB, WRITE],
  detect: (record, doc) =>
    (isCheckpointDoc(record, doc) && !isPythonCheckpoint(doc)) ||
    (isJsonDoc(record, doc, BLOB) && !("blob" in doc)) ||
    (isJsonDoc(record, doc, WRITE) && !("blob" in doc)),
  decode: (record, doc, options) => {
    if (record.key.startsWith(BLOB)) return decodeBlobDoc("js", record, doc!, options);
    if (record.key.startsWith(WRITE)) return decodeWriteDoc("js", record, doc!, options);
    return decodeCheckpointDoc("js", record, doc!, false);
  },
};

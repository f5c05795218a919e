import type { ValueFlags } from "./values.js";

/**
 * The source layouts the importer reads (README, "Importing sessions from Redis" > "Formats"):
 * - `python`: langgraph-checkpoint-redis >= 0.1 `RedisSaver`;
 * - `python-shallow`: its `ShallowRedisSaver`;
 * - `python-0.0`: langgraph-checkpoint-redis <= 0.0.8 (parent-keyed ids, blob docs);
 * - `js`: @langchain/langgraph-checkpoint-redis 1.x `RedisSaver` (with or without blob docs);
 * - `js-shallow`: its `ShallowRedisSaver`;
 * - `howto-colon` / `howto-dollar`: the LangGraph how-to hash saver with `:` or `$` separators;
 * - `checkpoint-redis`: the npm `checkpoint-redis` package (comma-separated byte values).
 */
export const SOURCE_FORMATS = [
  "python",
  "python-shallow",
  "python-0.0",
  "js",
  "js-shallow",
  "howto-colon",
  "howto-dollar",
  "checkpoint-redis",
] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

/** `--format` values: `auto`, one format, or a family (`python`, `js`, `howto`). */
export const FORMAT_CHOICES = ["auto", ...SOURCE_FORMATS, "howto"] as const;
export type FormatChoice = (typeof FORMAT_CHOICES)[number];

/** The formats a `--format` choice admits. */
export function formatsFor(choice: FormatChoice): ReadonlySet<SourceFormat> {
  switch (choice) {
    case "auto":
      return new Set(SOURCE_FORMATS);
    case "python":
      return new Set(["python", "python-shallow"]);
    case "js":
      return new Set(["js", "js-shallow"]);
    case "howto":
      return new Set(["howto-colon", "howto-dollar"]);
    default:
      return new Set([choice]);
  }
}

/** One Redis key as read (never modified): JSON text for JSON/string keys, fields for hashes. */
export type RawRecord =
  | { key: string; kind: "json"; text: string }
  | { key: string; kind: "hash"; fields: Map<string, Buffer> };

/**
 * A STRING key's value as the reply's bytes, not yet decoded into text: how the read hands over
 * the official savers' documents, which then wait for their thread as bytes (see `ingest.ts`).
 */
export interface JsonBytesRecord {
  key: string;
  kind: "jsonBytes";
  bytes: Buffer;
}

/** What the source read yields. */
export type SourceRecord = RawRecord | JsonBytesRecord;

/** A checkpoint as found in the source, ids taken from the document, values normalised. */
export interface SourceCheckpoint {
  key: string;
  format: SourceFormat;
  threadId: string;
  ns: string;
  id: string;
  parentId: string | null;
  /** `v`, `ts`, and any other top-level checkpoint field except values and Python extras. */
  base: { v: number; ts: string; [field: string]: unknown };
  /** Channel versions as the source wrote them (numbers or Python strings). */
  channelVersions: Record<string, unknown>;
  versionsSeen: unknown;
  /** Values stored inside the document, as decoded (normalised when planned). */
  inlineValues: Map<string, unknown>;
  metadata: Record<string, unknown>;
  /** Epoch ms of the checkpoint (its `ts`, else the doc's `checkpoint_ts`). */
  activityMs: number | undefined;
  /** Python 0.0.x wrote blobs that take precedence over the inline copies. */
  blobsWin: boolean;
}

/** The no-value marker of a blob doc with `type: "empty"`. */
export const EMPTY = Symbol("empty channel");

/** A channel value stored apart from its checkpoint (`checkpoint_blob:*`). */
export interface SourceBlob {
  key: string;
  threadId: string;
  ns: string;
  channel: string;
  /** The source's version, as text (blob keys are matched on the source's version). */
  version: string;
  /**
   * Decodes and normalises the value (or returns EMPTY). Deferred: most blobs of a thread
   * belong to checkpoints `--history latest` does not import. Throws IMPORT_RECORD_INVALID.
   */
  load: (flags: ValueFlags) => unknown;
}

/** A pending write as found in the source. */
export interface SourceWrite {
  key: string;
  threadId: string;
  ns: string;
  checkpointId: string;
  taskId: string;
  taskPath: string;
  idx: number;
  channel: string;
  /** Decodes and normalises the value; deferred like {@link SourceBlob.load}. */
  load: (flags: ValueFlags) => unknown;
}

/** What an adapter makes of one record. */
export type DecodedRecord =
  | { kind: "checkpoint"; format: SourceFormat; checkpoint: SourceCheckpoint; flags: ValueFlags }
  | { kind: "blob"; format: SourceFormat; blob: SourceBlob; flags: ValueFlags }
  | { kind: "write"; format: SourceFormat; write: SourceWrite; flags: ValueFlags };

/** Options of {@link FormatAdapter.decode}. */
export interface DecodeOptions {
  /**
   * The decoded record lives only while its thread is converted: deferred loaders may keep the
   * parsed document. Otherwise (the record waits in memory for the rest of the read) they keep
   * only the text and parse it again when the value is needed. Default `false`.
   */
  transient?: boolean;
}

/**
 * A reader for one source format. `detect` must be cheap (key prefix, record kind, a field or
 * two); `decode` does the work and throws IMPORT_RECORD_INVALID (with `details.threadId` when
 * the thread is known) for records that cannot be converted.
 */
export interface FormatAdapter {
  readonly format: SourceFormat;
  /** Key prefixes this adapter reads; only keys with one of them are fetched at all. */
  readonly prefixes: readonly string[];
  detect(record: RawRecord, doc: Record<string, unknown> | undefined): boolean;
  decode(
    record: RawRecord,
    doc: Record<string, unknown> | undefined,
    options?: DecodeOptions,
  ): DecodedRecord;
}

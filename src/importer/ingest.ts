import { isThreadlineError } from "../errors.js";
import { ThreadCollector, type ThreadSource } from "./assemble.js";
import { parseDoc } from "./formats/common.js";
import { ADAPTERS } from "./formats/index.js";
import type {
  DecodedRecord,
  JsonBytesRecord,
  RawRecord,
  SourceFormat,
  SourceRecord,
} from "./types.js";

/**
 * From records to threads. A record is either decoded at once, as it is read, or kept as its
 * text and decoded when its thread is converted (decision I12). Deferring is what the official
 * savers' documents allow: each opens with `{"thread_id":"..."` (the first field of every
 * checkpoint, blob and write document both savers write), so the thread is known without
 * parsing. Parsing later, one thread at a time, means every document is parsed once and its tree
 * dies young; parsing at read time kept every tree of the selection alive until its thread's
 * turn, and the garbage collector copied them from space to space (a third of the CPU). What
 * `MGET` returns waits as the reply's bytes, not even decoded into text (decision I18).
 *
 * Both ways run the same {@link decodeRecord} and feed a thread the same events in key order,
 * so a thread is assembled exactly as if everything had been decoded at once.
 */

/** What decoding one record gave. */
export type RecordOutcome =
  /** No reader recognises the record (other data under a saver prefix). */
  | { kind: "unknown" }
  /** A checkpoint of a format `--format` excluded. */
  | { kind: "excluded" }
  | { kind: "decoded"; record: DecodedRecord }
  /** The record cannot be converted; `threadId` when its thread is known (then it is rejected). */
  | { kind: "invalid"; threadId: string | undefined; reason: string };

const THREAD_ID_RE = /"thread_id"\s*:\s*"((?:[^"\\]|\\.)*)"/;

/** The thread a corrupt document belonged to, when its text still names one. */
function sniffThreadId(record: RawRecord): string | undefined {
  if (record.kind !== "json") return undefined;
  const m = THREAD_ID_RE.exec(record.text);
  if (!m) return undefined;
  return decodeJsonString(m[1]!);
}

function decodeJsonString(body: string): string | undefined {
  if (!body.includes("\\")) return body;
  try {
    return JSON.parse(`"${body}"`) as string;
  } catch {
    return undefined;
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Decodes one record with the first reader that recognises it. `transient`: the result lives only
 * while its thread is converted, so blob and write loaders may hold the parsed document instead of
 * parsing the text again (see `docSource` in formats/official.ts).
 */
export function decodeRecord(
  record: RawRecord,
  admitted: ReadonlySet<SourceFormat>,
  transient: boolean,
): RecordOutcome {
  const doc = parseDoc(record);
  const adapter = ADAPTERS.find((a) => a.detect(record, doc));
  if (!adapter) {
    if (record.kind === "json" && doc === undefined)
      return {
        kind: "invalid",
        threadId: sniffThreadId(record),
        reason: "document is not valid JSON",
      };
    return { kind: "unknown" };
  }
  try {
    const decoded = adapter.decode(record, doc, { transient });
    if (decoded.kind === "checkpoint" && !admitted.has(decoded.format)) return { kind: "excluded" };
    return { kind: "decoded", record: decoded };
  } catch (err) {
    const threadId = isThreadlineError(err)
      ? (err.details?.threadId as string | undefined)
      : undefined;
    return { kind: "invalid", threadId, reason: describeError(err) };
  }
}

/** The thread a decoded record belongs to (its document's, or its key's for hash formats). */
export function threadOf(record: DecodedRecord): string {
  return record.kind === "checkpoint"
    ? record.checkpoint.threadId
    : record.kind === "blob"
      ? record.blob.threadId
      : record.write.threadId;
}

/**
 * `{"thread_id":"<id>"` at the very start of a document (whitespace allowed): the official savers'
 * field order. Sticky on purpose: a `thread_id` anywhere else could be a nested value's.
 */
const LEADING_THREAD_ID_RE = /\s*\{\s*"thread_id"\s*:\s*"((?:[^"\\]|\\.)*)"/y;

/**
 * The thread id a JSON document opens with, read from its text without parsing it, or
 * `undefined` when it does not open that way (the record is then decoded at once). The first
 * field of an object is a top-level field, so this is the document's `thread_id` unless the
 * document repeats the field (then {@link ThreadEvents.materialize} rejects the thread); and it is
 * the first `thread_id` in the text, which is also what a corrupt document is attributed to.
 */
export function leadingThreadId(text: string): string | undefined {
  LEADING_THREAD_ID_RE.lastIndex = 0;
  const m = LEADING_THREAD_ID_RE.exec(text);
  return m ? decodeJsonString(m[1]!) : undefined;
}

/**
 * Bytes of a document's opening that {@link leadingThreadIdOfBytes} decodes: room for the field
 * and a long thread id. A longer id, or one cut at the end, does not match there, and the
 * document is then decoded whole.
 */
const OPENING_BYTES = 512;

/** The opening both official savers write, byte for byte (no whitespace). */
const OPENING = Buffer.from('{"thread_id":"', "latin1");

/** {@link leadingThreadId} of a document still held as its UTF-8 bytes. */
export function leadingThreadIdOfBytes(bytes: Buffer): string | undefined {
  // The savers' exact opening and an id without escapes are read from the bytes: only the id is
  // decoded. A quote byte never occurs inside a multi-byte UTF-8 sequence, so the id decoded
  // alone is the same text as in the whole document decoded.
  const start = OPENING.length;
  let opens = bytes.length > start;
  // A loop: Buffer#compare's argument checks cost more than comparing 14 bytes.
  for (let i = 0; opens && i < start; i++) opens = bytes[i] === OPENING[i];
  if (opens) {
    const limit = Math.min(bytes.length, OPENING_BYTES);
    for (let i = start; i < limit; i++) {
      const b = bytes[i]!;
      if (b === 0x22) return bytes.toString("utf8", start, i);
      if (b === 0x5c) break;
    }
  }
  // Anything else (whitespace, an escaped id, an id running past the window) goes through the
  // regex on the window's text. A character cut at the window's end decodes as U+FFFD there,
  // after any closing quote the match needs, so it can only make the match fail (then the whole
  // text is used), never differ.
  return leadingThreadId(bytes.toString("utf8", 0, Math.min(bytes.length, OPENING_BYTES)));
}

/** The text of a held document (a STRING value: decoded as UTF-8, as a string reply would be). */
function asText(record: JsonBytesRecord): RawRecord {
  return { key: record.key, kind: "json", text: record.bytes.toString("utf8") };
}

/** One thing that happened to a thread, in key order. */
type ThreadEvent =
  /** Kept as read; decoded when the thread is converted. */
  | RawRecord
  | JsonBytesRecord
  | { kind: "decoded"; record: DecodedRecord }
  | { kind: "rejected"; key: string; reason: string };

/** Counters the decoding feeds, wherever it happens (the import's summary). */
export interface IngestCounters {
  unknownKeys: number;
  excludedKeys: number;
  formats: Partial<Record<SourceFormat, number>>;
}

/** A record that names no thread and cannot be converted (reported once, after reading). */
export interface RecordRejection {
  key: string;
  reason: string;
}

/**
 * The records of every thread, by thread id, until each thread is converted. Records that open
 * with their thread id wait as text; the rest are decoded as they arrive, and their outcome waits
 * in the same list, so a thread sees its records in key order either way.
 */
export class ThreadEvents {
  private readonly byThread = new Map<string, ThreadEvent[]>();

  constructor(
    private readonly admitted: ReadonlySet<SourceFormat>,
    private readonly counters: IngestCounters,
    private readonly onRecordInvalid: (r: RecordRejection) => void,
  ) {}

  /** Thread ids seen so far (including threads that will turn out to have no checkpoint). */
  threadIds(): string[] {
    return [...this.byThread.keys()];
  }

  private push(threadId: string, event: ThreadEvent): void {
    const list = this.byThread.get(threadId);
    if (list) list.push(event);
    else this.byThread.set(threadId, [event]);
  }

  /** Takes one record as read; returns the thread it waits for (none: counted or reported). */
  add(record: SourceRecord): string | undefined {
    if (record.kind === "jsonBytes") {
      const threadId = leadingThreadIdOfBytes(record.bytes);
      if (threadId === undefined) return this.add(asText(record));
      this.push(threadId, record);
      return threadId;
    }
    if (record.kind === "json") {
      const threadId = leadingThreadId(record.text);
      if (threadId !== undefined) {
        this.push(threadId, record);
        return threadId;
      }
    }
    const outcome = decodeRecord(record, this.admitted, false);
    let filed: string | undefined;
    this.apply(outcome, record.key, (threadId, event) => {
      filed = threadId;
      this.push(threadId, event);
    });
    return filed;
  }

  private apply(
    outcome: RecordOutcome,
    key: string,
    toThread: (threadId: string, event: ThreadEvent) => void,
  ): void {
    switch (outcome.kind) {
      case "unknown":
        this.counters.unknownKeys++;
        return;
      case "excluded":
        this.counters.excludedKeys++;
        return;
      case "decoded": {
        const r = outcome.record;
        if (r.kind === "checkpoint")
          this.counters.formats[r.format] = (this.counters.formats[r.format] ?? 0) + 1;
        toThread(threadOf(r), { kind: "decoded", record: r });
        return;
      }
      case "invalid":
        if (outcome.threadId !== undefined)
          toThread(outcome.threadId, { kind: "rejected", key, reason: outcome.reason });
        else this.onRecordInvalid({ key, reason: outcome.reason });
    }
  }

  /**
   * Decodes what waits for `threadId` and assembles the thread, then forgets its records.
   * `undefined` when nothing of it was decodable (unknown records only).
   */
  materialize(threadId: string): ThreadSource | undefined {
    const events = this.byThread.get(threadId);
    this.byThread.delete(threadId);
    if (!events) return undefined;
    const collector = new ThreadCollector();
    const toThread = (id: string, event: ThreadEvent) => {
      if (event.kind === "decoded") {
        if (id === threadId) collector.add(event.record);
        else
          // Only a document that repeats its thread_id field gets here (the text opened with
          // one id, the parse kept the last): it names two threads.
          collector.reject(threadId, keyOf(event.record), "document names more than one thread_id");
      } else if (event.kind === "rejected") {
        collector.reject(threadId, event.key, event.reason);
      }
    };
    for (const event of events) {
      if (event.kind === "jsonBytes")
        this.apply(decodeRecord(asText(event), this.admitted, true), event.key, toThread);
      else if (event.kind === "json" || event.kind === "hash")
        this.apply(decodeRecord(event, this.admitted, true), event.key, toThread);
      else toThread(threadId, event);
    }
    return collector.threads.get(threadId);
  }
}

function keyOf(r: DecodedRecord): string {
  return r.kind === "checkpoint" ? r.checkpoint.key : r.kind === "blob" ? r.blob.key : r.write.key;
}

import { JsonPlusSerializer } from "@langchain/langgraph-checkpoint";
import { planThread, ThreadCollector } from "../../../src/importer/assemble.js";
import {
  decodeRecord,
  leadingThreadId,
  leadingThreadIdOfBytes,
  threadOf,
  ThreadEvents,
  type IngestCounters,
  type RecordRejection,
} from "../../../src/importer/ingest.js";
import { KNOWN_PREFIXES } from "../../../src/importer/formats/index.js";
import { serializeThread } from "../../../src/importer/serialize.js";
import { formatsFor, type RawRecord, type SourceRecord } from "../../../src/importer/types.js";
import {
  FIXTURE_FORMATS,
  fixtureCommands,
  recordConversation,
  type Conversation,
} from "../../integration/importer/fixtures.js";

const ALL = formatsFor("auto");

function recordsOf(conv: Conversation, format: (typeof FIXTURE_FORMATS)[number]): RawRecord[] {
  // What the scan reads: keys with a reader's prefix (not the savers' index keys).
  const read = fixtureCommands(format, conv).filter((c) =>
    KNOWN_PREFIXES.some((p) => c.key.startsWith(p)),
  );
  return read.map((c) =>
    c.kind === "set"
      ? { key: c.key, kind: "json" as const, text: c.value }
      : {
          key: c.key,
          kind: "hash" as const,
          fields: new Map(Object.entries(c.fields).map(([k, v]) => [k, Buffer.from(v)])),
        },
  );
}

function newEvents() {
  const counters: IngestCounters = { unknownKeys: 0, excludedKeys: 0, formats: {} };
  const invalid: RecordRejection[] = [];
  return { events: new ThreadEvents(ALL, counters, (r) => invalid.push(r)), counters, invalid };
}

/** Every record decoded as it is read (how the importer worked before decision I12). */
function decodedAtOnce(records: RawRecord[]) {
  const collector = new ThreadCollector();
  for (const r of records) {
    const o = decodeRecord(r, ALL, false);
    if (o.kind === "decoded") collector.add(o.record);
    else if (o.kind === "invalid" && o.threadId !== undefined)
      collector.reject(o.threadId, r.key, o.reason);
  }
  return collector;
}

describe("importer ingest: records wait by thread and are decoded when their thread is converted", () => {
  let conv: Conversation;
  beforeAll(async () => {
    conv = await recordConversation("ingest-t1", ["weather in sf?", "thanks"]);
  });

  it("reads the thread id a document opens with, and nothing else", () => {
    expect(leadingThreadId('{"thread_id":"t:1","checkpoint_ns":""}')).toBe("t:1");
    expect(leadingThreadId(' { "thread_id" : "a\\"b" }')).toBe('a"b');
    expect(leadingThreadId('{"checkpoint_ns":"","thread_id":"t"}')).toBeUndefined();
    expect(leadingThreadId('{"metadata":{"thread_id":"t"}}')).toBeUndefined();
    expect(leadingThreadId('[{"thread_id":"t"}]')).toBeUndefined();
    expect(leadingThreadId('{"thread_id":5}')).toBeUndefined();
    expect(leadingThreadId('x{"thread_id":"t"}')).toBeUndefined();
  });

  it("reads the thread id from a document's bytes, or leaves a cut opening to the whole text", () => {
    const bytes = (text: string) => Buffer.from(text, "utf8");
    expect(leadingThreadIdOfBytes(bytes('{"thread_id":"t-\u00e9\u4e2d","v":1}'))).toBe(
      "t-\u00e9\u4e2d",
    );
    expect(leadingThreadIdOfBytes(bytes('{"v":1,"thread_id":"t"}'))).toBeUndefined();
    // An id running past the decoded window (512 bytes), with a 3-byte character cut at its end.
    const long = `{"thread_id":"${"a".repeat(497)}\u4e2d${"b".repeat(50)}"}`;
    expect(Buffer.from(long).indexOf(Buffer.from("\u4e2d"))).toBe(511);
    expect(leadingThreadIdOfBytes(bytes(long))).toBeUndefined();
    expect(leadingThreadId(long)).toBe(`${"a".repeat(497)}\u4e2d${"b".repeat(50)}`);
  });

  it("reads an id from the bytes exactly as from the opening's text, whichever way it is read", () => {
    // The reference: the regex on the window's text (what every document went through before
    // the byte scan of the savers' exact opening).
    const viaText = (b: Buffer) => leadingThreadId(b.toString("utf8", 0, Math.min(b.length, 512)));
    const docs: Buffer[] = [
      '{"thread_id":"t:1","checkpoint_ns":""}',
      '{"thread_id":"","v":1}',
      '{"thread_id":"a\\"b","v":1}',
      '{"thread_id":"a\\\\","v":1}',
      '{"thread_id":"a\\u00e9","v":1}',
      ' {"thread_id":"t"}',
      '{ "thread_id" : "t"}',
      '{"thread_id":"t-\u00e9\u4e2d\ud83d\ude00","v":1}',
      '{"thread_id":"unterminated',
      '{"thread_id":"',
      '{"thread_id":5}',
      `{"thread_id":"${"a".repeat(497)}"}`,
      `{"thread_id":"${"a".repeat(498)}"}`,
      `{"thread_id":"${"a".repeat(600)}"}`,
    ].map((t) => Buffer.from(t, "utf8"));
    // Invalid UTF-8 inside the id: a cut 3-byte sequence and a lone continuation byte.
    docs.push(
      Buffer.concat([Buffer.from('{"thread_id":"x'), Buffer.from([0xe4, 0xb8]), Buffer.from('"}')]),
    );
    docs.push(
      Buffer.concat([Buffer.from('{"thread_id":"'), Buffer.from([0x80, 0x41]), Buffer.from('"}')]),
    );
    for (const d of docs) expect(leadingThreadIdOfBytes(d), d.toString()).toBe(viaText(d));
    expect(leadingThreadIdOfBytes(docs[0]!)).toBe("t:1");
    expect(leadingThreadIdOfBytes(docs[2]!)).toBe('a"b');
    expect(leadingThreadIdOfBytes(docs[11]!)).toBe("a".repeat(497));
    expect(leadingThreadIdOfBytes(docs[12]!)).toBeUndefined();
  });

  it.each(FIXTURE_FORMATS)(
    "%s: documents held as bytes assemble exactly as the same documents held as text",
    async (format) => {
      const records = recordsOf(conv, format);
      const asBytes: SourceRecord[] = records.map((r) =>
        r.kind === "json" ? { key: r.key, kind: "jsonBytes", bytes: Buffer.from(r.text) } : r,
      );
      const serde = new JsonPlusSerializer();
      const text = newEvents();
      const held = newEvents();
      for (const r of records) text.events.add(r);
      for (const r of asBytes) held.events.add(r);
      const a = text.events.materialize(conv.threadId)!;
      const b = held.events.materialize(conv.threadId)!;
      expect(held.invalid).toEqual([]);
      expect(held.counters).toEqual(text.counters);
      expect(await serializeThread(planThread(b, "full"), serde)).toEqual(
        await serializeThread(planThread(a, "full"), serde),
      );
    },
  );

  it("decodes a held document that does not open with its thread id at once, as text would be", () => {
    const { events, counters, invalid } = newEvents();
    events.add({ key: "checkpoint:x:y:z", kind: "jsonBytes", bytes: Buffer.from("{not json") });
    // Not attributable to a thread: reported as an invalid record at once.
    expect(invalid.map((r) => r.key)).toEqual(["checkpoint:x:y:z"]);
    expect(counters.unknownKeys).toBe(0);
  });

  it.each(FIXTURE_FORMATS)(
    "%s: a thread assembled from deferred records gives exactly the rows of one decoded at read time",
    async (format) => {
      const records = recordsOf(conv, format);
      const serde = new JsonPlusSerializer();
      const before = decodedAtOnce(records).threads.get(conv.threadId)!;
      const { events, invalid } = newEvents();
      for (const r of records) events.add(r);
      const after = events.materialize(conv.threadId)!;
      expect(invalid).toEqual([]);
      expect(after.rejection).toBeUndefined();
      for (const history of ["full", "latest"] as const) {
        const a = await serializeThread(planThread(before, history), serde);
        const b = await serializeThread(planThread(after, history), serde);
        expect(b).toEqual(a);
        expect(b.checkpoints.length).toBeGreaterThan(0);
      }
    },
  );

  it("parses an official saver's document once, when its thread is converted (was twice for blobs and writes)", async () => {
    const records = recordsOf(conv, "js");
    const { events } = newEvents();
    const parse = vi.spyOn(JSON, "parse");
    try {
      for (const r of records) events.add(r);
      expect(parse).not.toHaveBeenCalled();
      const t = events.materialize(conv.threadId)!;
      await serializeThread(planThread(t, "full"), new JsonPlusSerializer());
      const parsed = parse.mock.calls.map(([text]) => text);
      expect(new Set(parsed).size).toBe(parsed.length);
      expect(parsed.length).toBe(records.filter((r) => r.kind === "json").length);
    } finally {
      parse.mockRestore();
    }
  });

  it("keeps records of a thread in key order whether deferred or decoded at once", () => {
    const records = recordsOf(conv, "js");
    // The same write twice: one copy deferred, one not (it does not open with thread_id);
    // the later key wins, as when every record was decoded at once.
    const write = records.find((r) => r.key.startsWith("checkpoint_write:"))!;
    if (write.kind !== "json") throw new Error("fixture write is JSON");
    const doc = JSON.parse(write.text) as Record<string, unknown>;
    const { thread_id: threadId, ...rest } = doc;
    const reordered: RawRecord = {
      key: `${write.key}:copy`,
      kind: "json",
      text: JSON.stringify({ ...rest, thread_id: threadId, channel: "other" }),
    };
    const all = [...records, reordered];
    const { events } = newEvents();
    for (const r of all) events.add(r);
    const after = events.materialize(conv.threadId)!;
    const before = decodedAtOnce(all).threads.get(conv.threadId)!;
    expect([...after.writes.values()].map((w) => [w.key, w.channel])).toEqual(
      [...before.writes.values()].map((w) => [w.key, w.channel]),
    );
    expect([...after.writes.values()].some((w) => w.channel === "other")).toBe(true);
  });

  it("rejects a thread whose document repeats thread_id with another value", () => {
    const records = recordsOf(conv, "js");
    const blob = records.find((r) => r.key.startsWith("checkpoint_blob:"))!;
    if (blob.kind !== "json") throw new Error("fixture blob is JSON");
    const forged: RawRecord = {
      ...blob,
      text: `${blob.text.slice(0, -1)},"thread_id":"someone-else"}`,
    };
    const { events } = newEvents();
    for (const r of records) events.add(r === blob ? forged : r);
    const t = events.materialize(conv.threadId)!;
    expect(t.rejection).toEqual({
      key: blob.key,
      reason: "document names more than one thread_id",
    });
    expect(events.materialize("someone-else")).toBeUndefined();
  });

  it("attributes a corrupt deferred document to its thread, and counts unknown ones when converted", () => {
    const { events, counters, invalid } = newEvents();
    events.add({ key: "checkpoint:t9::x", kind: "json", text: '{"thread_id":"t9","checkpoint":{' });
    events.add({ key: "checkpoint:t9::y", kind: "json", text: '{"thread_id":"t9","other":1}' });
    expect(counters.unknownKeys).toBe(0);
    const t = events.materialize("t9")!;
    expect(t.rejection).toEqual({ key: "checkpoint:t9::x", reason: "document is not valid JSON" });
    expect(counters.unknownKeys).toBe(1);
    expect(invalid).toEqual([]);
  });

  it("decodes records that do not open with their thread id at once (hash formats)", () => {
    const records = recordsOf(conv, "howto-colon");
    const { events, counters } = newEvents();
    for (const r of records) events.add(r);
    // Counted as read: the checkpoints were decoded already.
    expect(counters.formats["howto-colon"]).toBe(conv.checkpoints.length);
    const t = events.materialize(conv.threadId)!;
    expect(t.checkpoints.size).toBe(conv.checkpoints.length);
    for (const r of records) {
      const o = decodeRecord(r, ALL, false);
      if (o.kind === "decoded") expect(threadOf(o.record)).toBe(conv.threadId);
    }
  });
});

import { JsonPlusSerializer, emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { describe, expect, it } from "vitest";
import { FallbackStore } from "../../../../src/checkpoint/fallback/memory-store.js";
import { PendingLog, type NewPendingOp } from "../../../../src/checkpoint/fallback/pending-log.js";

const del = (threadId: string, bytes = 10): NewPendingOp => ({
  kind: "deleteThread",
  threadId,
  entries: 1,
  bytes,
});

const writes = (threadId: string, entries: number, bytes: number): NewPendingOp => ({
  kind: "putWrites",
  threadId,
  ns: "",
  checkpointId: "c1",
  taskId: "task",
  taskPath: "",
  writes: [],
  entries,
  bytes,
});

function counts(log: PendingLog) {
  return { size: log.size, entries: log.entries, bytes: log.bytes };
}

describe("PendingLog counters", () => {
  it("count the entries and bytes of what was appended, per operation and per thread", () => {
    const log = new PendingLog();
    expect(counts(log)).toEqual({ size: 0, entries: 0, bytes: 0 });
    log.append(writes("a", 3, 300));
    log.append(del("b", 20));
    log.append(writes("a", 2, 50));
    expect(counts(log)).toEqual({ size: 3, entries: 6, bytes: 370 });
    expect(log.countOf("a")).toBe(2);
    expect(log.countOf("b")).toBe(1);
    expect(log.countOf("c")).toBe(0);
  });

  it("take an operation out once, however often it is removed", () => {
    const log = new PendingLog();
    const first = log.append(writes("a", 3, 300));
    log.append(writes("a", 2, 50));
    expect(log.remove(first)).toBe(true);
    expect(log.remove(first)).toBe(false);
    expect(counts(log)).toEqual({ size: 1, entries: 2, bytes: 50 });
    expect(log.countOf("a")).toBe(1);
  });

  it("dropThread takes out the thread's puts and writes and keeps its delete and other threads", () => {
    const log = new PendingLog();
    log.append(writes("a", 3, 300));
    log.append(del("a", 20));
    log.append(writes("a", 1, 1));
    log.append(writes("b", 4, 40));
    log.dropThread("a");
    expect(counts(log)).toEqual({ size: 2, entries: 5, bytes: 60 });
    expect(log.countOf("a")).toBe(1);
    expect(log.head().map((op) => [op.kind, op.threadId])).toEqual([
      ["deleteThread", "a"],
      ["putWrites", "b"],
    ]);
  });

  it("return to zero when everything left, by removal or clear", () => {
    const log = new PendingLog();
    const ops = [log.append(writes("a", 3, 300)), log.append(del("b")), log.append(del("a"))];
    for (const op of ops) log.remove(op);
    expect(counts(log)).toEqual({ size: 0, entries: 0, bytes: 0 });
    expect(log.countOf("a")).toBe(0);
    log.append(writes("c", 7, 70));
    log.clear();
    expect(counts(log)).toEqual({ size: 0, entries: 0, bytes: 0 });
    expect(log.countOf("c")).toBe(0);
  });

  it("whenClear resolves when the thread's last operation leaves, not before", async () => {
    const log = new PendingLog();
    const a1 = log.append(writes("a", 1, 1));
    const a2 = log.append(writes("a", 1, 1));
    let cleared = false;
    const waiting = log.whenClear("a").then(() => (cleared = true));
    expect([...log.awaited]).toEqual(["a"]);
    log.remove(a1);
    await Promise.resolve();
    expect(cleared).toBe(false);
    log.remove(a2);
    await waiting;
    expect(cleared).toBe(true);
    expect(log.awaited.size).toBe(0);
    await log.whenClear("a"); // nothing logged: at once
  });
});

describe("FallbackStore pending counts come from the log alone", () => {
  const serde = new JsonPlusSerializer();
  const store = () =>
    new FallbackStore(
      serde,
      {
        maxPendingEntries: 1_000,
        maxPendingBytes: 1_000_000,
        cacheMaxThreads: 100,
        cacheMaxBytes: 1_000_000,
        cacheCheckpointsPerNamespace: 2,
      },
      (v) => (typeof v === "number" ? v + 1 : 1),
    );
  const sumOf = (s: FallbackStore) =>
    s
      .pendingOps()
      .reduce((n, op) => ({ entries: n.entries + op.entries, bytes: n.bytes + op.bytes }), {
        entries: 0,
        bytes: 0,
      });

  it("equal the sum over the logged operations through repeated puts, repeated writes and deletes, and reach 0 when all are replayed", async () => {
    const s = store();
    const c = emptyCheckpoint();
    c.id = uuid6(-1);
    c.channel_values = { messages: [{ text: "hi" }] };
    c.channel_versions = { messages: 1 };
    const putPending = () =>
      s.putCheckpoint({
        threadId: "t",
        ns: "",
        parentId: undefined,
        checkpoint: c,
        metadata: { source: "loop", step: 0, parents: {} },
        newVersions: { messages: 1 },
        pending: true,
      });
    const writePending = async (value: unknown) =>
      s.putWritesSerialized({
        threadId: "t",
        ns: "",
        checkpointId: c.id,
        taskId: "task",
        taskPath: "",
        writes: await s.serializeWrites([
          ["x", value],
          ["y", value],
        ]),
        pending: true,
      });
    await putPending();
    await putPending(); // the same checkpoint again (a retried put): replayed twice, counted twice
    await writePending(1);
    await writePending(2); // the same (task, idx): Postgres keeps the first, the replay still sends it
    s.deleteThread("gone", true);
    expect(s.pendingEntries).toBe(1 + 1 + 2 + 2 + 1);
    expect({ entries: s.pendingEntries, bytes: s.pendingBytes }).toEqual(sumOf(s));
    expect(s.pendingBytes).toBeGreaterThan(0);
    expect(s.hasPending("t")).toBe(true);
    expect(s.hasPending("gone")).toBe(true); // a logged delete counts

    const ops = s.pendingOps();
    expect(s.complete(ops[0]!)).toBe(true);
    expect(s.complete(ops[0]!)).toBe(false); // a second completion changes nothing
    expect({ entries: s.pendingEntries, bytes: s.pendingBytes }).toEqual(sumOf(s));
    expect(s.cachedBytes).toBe(0); // the checkpoint is logged once more: still pending

    for (const op of ops.slice(1)) s.complete(op);
    expect({ entries: s.pendingEntries, bytes: s.pendingBytes, log: s.logSize }).toEqual({
      entries: 0,
      bytes: 0,
      log: 0,
    });
    expect(s.hasPending("t")).toBe(false);
    // Replayed entries became cache (evictable), without any repair step.
    expect(s.cachedBytes).toBeGreaterThan(0);
    expect((await s.getTuple("t", "", c.id))?.pendingWrites).toEqual([
      ["task", "x", 1],
      ["task", "y", 1],
    ]);
  });

  it("a delete of a thread takes its logged operations out of the counts", async () => {
    const s = store();
    const c = emptyCheckpoint();
    c.id = uuid6(-1);
    await s.putCheckpoint({
      threadId: "t",
      ns: "",
      parentId: undefined,
      checkpoint: c,
      metadata: { source: "loop", step: 0, parents: {} },
      newVersions: {},
      pending: true,
    });
    const before = s.pendingBytes;
    s.deleteThread("t", true);
    expect(s.pendingEntries).toBe(1);
    expect(s.pendingBytes).toBeLessThan(before);
    expect({ entries: s.pendingEntries, bytes: s.pendingBytes }).toEqual(sumOf(s));
    s.deleteThread("t", false);
    expect({ entries: s.pendingEntries, bytes: s.pendingBytes }).toEqual(sumOf(s));
  });
});

import {
  ERROR,
  JsonPlusSerializer,
  emptyCheckpoint,
  uuid6,
  type Checkpoint,
} from "@langchain/langgraph-checkpoint";
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import {
  FallbackStore,
  jsonContains,
  type FallbackStoreLimits,
} from "../../../../src/checkpoint/fallback/memory-store.js";
import { classifyDbError } from "../../../../src/db/errors.js";
import { backoffDelay } from "../../../../src/db/retry.js";
import { isThreadlineError } from "../../../../src/errors.js";

const meta = { source: "loop" as const, step: 0, parents: {} };

function store(limits: Partial<FallbackStoreLimits> = {}) {
  return new FallbackStore(
    new JsonPlusSerializer(),
    {
      maxPendingEntries: 1_000,
      maxPendingBytes: 1_000_000,
      cacheMaxThreads: 100,
      cacheMaxBytes: 1_000_000,
      cacheCheckpointsPerNamespace: 2,
      ...limits,
    },
    (v) => (typeof v === "number" ? v + 1 : 1),
  );
}

function cp(values: Record<string, unknown>, versions: Record<string, number>): Checkpoint {
  const c = emptyCheckpoint();
  c.id = uuid6(-1);
  c.channel_values = values;
  c.channel_versions = versions;
  return c;
}

const put = (
  s: FallbackStore,
  threadId: string,
  c: Checkpoint,
  newVersions: Record<string, number>,
  pending: boolean,
  parentId?: string,
) =>
  s.putCheckpoint({
    threadId,
    ns: "",
    parentId,
    checkpoint: c,
    metadata: meta,
    newVersions,
    pending,
  });

describe("FallbackStore", () => {
  it("a pending put stores values only for newVersions, as Postgres does", async () => {
    const s = store();
    const c = cp({ a: "x", b: "y" }, { a: 1, b: 1 });
    await put(s, "t", c, { a: 1 }, true);
    expect((await s.getTuple("t", "", undefined))?.checkpoint.channel_values).toEqual({ a: "x" });
    expect(s.pendingEntries).toBe(1);
    expect(s.pendingOps().map((o) => o.kind)).toEqual(["put"]);
  });

  it("a thread cached before an outage and continued during it reads whole", async () => {
    const s = store();
    const before = cp({ messages: ["hi"], profile: { name: "Ada" } }, { messages: 1, profile: 1 });
    await put(s, "t", before, { messages: 1, profile: 1 }, false);
    const during = cp(
      { messages: ["hi", "again"], profile: { name: "Ada" } },
      { messages: 2, profile: 1 },
    );
    await put(s, "t", during, { messages: 2 }, true, before.id);
    const latest = await s.getTuple("t", "", undefined);
    expect(latest?.checkpoint.id).toBe(during.id);
    expect(latest?.checkpoint.channel_values).toEqual({
      messages: ["hi", "again"],
      profile: { name: "Ada" },
    });
    expect(latest?.parentConfig?.configurable?.checkpoint_id).toBe(before.id);
    expect(s.pendingEntries).toBe(1); // the cached one is not pending
  });

  it("caches durable checkpoints as snapshots: later changes by the caller and by readers do not reach it", async () => {
    const s = store();
    const messages = ["hi", "there"];
    const c = cp({ messages, note: { text: "n" } }, { messages: 1, note: 1 });
    await put(s, "t", c, { messages: 1, note: 1 }, false);
    // The caller changes its own maps and array after the put was acknowledged.
    c.channel_values["extra"] = "late";
    c.channel_versions["extra"] = 1;
    messages.push("late");
    const first = await s.getTuple("t", "", undefined);
    expect(first?.checkpoint.channel_values).toEqual({
      messages: ["hi", "there"],
      note: { text: "n" },
    });
    expect(first?.checkpoint.channel_versions).toEqual({ messages: 1, note: 1 });
    // A reader changing what it got does not change the next read.
    (first?.checkpoint.channel_values["messages"] as string[]).push("reader");
    const second = await s.getTuple("t", "", undefined);
    expect(second?.checkpoint.channel_values["messages"]).toEqual(["hi", "there"]);
  });

  it("a cached snapshot keeps its own versions_seen: the caller's later changes do not reach it", async () => {
    const s = store();
    const c = cp({ messages: ["hi"] }, { messages: 1 });
    c.versions_seen = { model: { messages: 1 } };
    await put(s, "t", c, { messages: 1 }, false);
    c.versions_seen["model"]!["messages"] = 2;
    c.versions_seen["other"] = { messages: 1 };
    const read = await s.getTuple("t", "", undefined);
    expect(read?.checkpoint.versions_seen).toEqual({ model: { messages: 1 } });
  });

  it("encodes metadata and write values to the very bytes of LangGraph's serializer", async () => {
    const serde = new JsonPlusSerializer();
    const s = store();
    const values: unknown[] = [
      meta,
      { source: "input", step: -1, parents: { "": "abc" }, writes: { x: [1, "é", null] } },
      [new HumanMessage({ id: "h1", content: "hello \u0000 there" })],
      [new AIMessage({ content: "reply", id: "a1", response_metadata: { model: "offline" } })],
      "plain",
      42,
      null,
    ];
    for (const value of values) {
      const [type, bytes] = await serde.dumpsTyped(value);
      const fast = s.encodeSync(value);
      expect(fast?.[0]).toBe(type);
      expect(Buffer.from(fast![1]).toString("utf8")).toBe(Buffer.from(bytes).toString("utf8"));
    }
    // What only the serializer can write is left to it.
    expect(s.encodeSync(new Set([1]))).toBeUndefined();
    expect(s.encodeSync(new Uint8Array([1, 2]))).toBeUndefined();
    expect(s.encodeSync({ a: undefined })).toBeUndefined();
    // A serializer of its own is always asked.
    class OwnSerde extends JsonPlusSerializer {}
    const own = new FallbackStore(
      new OwnSerde(),
      {
        maxPendingEntries: 10,
        maxPendingBytes: 10_000,
        cacheMaxThreads: 10,
        cacheMaxBytes: 10_000,
        cacheCheckpointsPerNamespace: 2,
      },
      () => 1,
    );
    expect(own.encodeSync(meta)).toBeUndefined();
  });

  it("counts cached snapshots against cacheMaxBytes by their serialized size", async () => {
    const big = "x".repeat(2_000);
    const s = store({ cacheMaxBytes: 5_000, cacheCheckpointsPerNamespace: 1 });
    await put(s, "a", cp({ messages: [big] }, { messages: 1 }), { messages: 1 }, false);
    expect(s.cachedBytes).toBeGreaterThan(2_000);
    await put(s, "b", cp({ messages: [big] }, { messages: 1 }), { messages: 1 }, false);
    await put(s, "c", cp({ messages: [big] }, { messages: 1 }), { messages: 1 }, false);
    // Over 5 000 bytes: the least recently used threads are evicted.
    expect(s.cachedBytes).toBeLessThanOrEqual(5_000);
    expect(await s.getTuple("a", "", undefined)).toBeUndefined();
    expect(await s.getTuple("c", "", undefined)).toBeDefined();
  });

  it("refuses with FALLBACK_FULL beyond maxPendingEntries and keeps everything it acknowledged", async () => {
    const s = store({ maxPendingEntries: 2 });
    const a = cp({ m: 1 }, { m: 1 });
    const b = cp({ m: 2 }, { m: 2 });
    await put(s, "t", a, { m: 1 }, true);
    await put(s, "t", b, { m: 2 }, true, a.id);
    const err = await put(s, "t", cp({ m: 3 }, { m: 3 }), { m: 3 }, true, b.id).catch(
      (e: unknown) => e,
    );
    expect(isThreadlineError(err, "FALLBACK_FULL")).toBe(true);
    expect(s.pendingEntries).toBe(2);
    expect(s.pendingOps()).toHaveLength(2);
    expect((await s.getTuple("t", "", undefined))?.checkpoint.id).toBe(b.id);
    // Cached (already durable) entries never count against the limit.
    await put(s, "other", cp({ m: 1 }, { m: 1 }), { m: 1 }, false);
    expect(s.pendingEntries).toBe(2);
  });

  it("refuses with FALLBACK_FULL beyond maxPendingBytes", async () => {
    const s = store({ maxPendingBytes: 2_000 });
    await expect(
      put(s, "t", cp({ m: "x".repeat(5_000) }, { m: 1 }), { m: 1 }, true),
    ).rejects.toMatchObject({
      code: "FALLBACK_FULL",
    });
    expect(s.pendingBytes).toBe(0);
    expect(s.threadCount).toBe(0);
  });

  it("deleteThread drops the thread's pending operations and logs one delete", async () => {
    const s = store();
    const a = cp({ m: 1 }, { m: 1 });
    await put(s, "gone", a, { m: 1 }, true);
    s.putWritesSerialized({
      threadId: "gone",
      ns: "",
      checkpointId: a.id,
      taskId: "task",
      taskPath: "",
      writes: await s.serializeWrites([["m", 2]]),
      pending: true,
    });
    await put(s, "kept", cp({ m: 1 }, { m: 1 }), { m: 1 }, true);
    s.deleteThread("gone", true);
    expect(s.pendingOps().map((o) => [o.kind, o.threadId])).toEqual([
      ["put", "kept"],
      ["deleteThread", "gone"],
    ]);
    expect(s.pendingEntries).toBe(2);
    expect(await s.getTuple("gone", "", undefined)).toBeUndefined();
  });

  it("orders pending writes by (task_path, task_id, idx); special channels overwrite, others keep the first value", async () => {
    const s = store();
    const a = cp({}, {});
    await put(s, "t", a, {}, true);
    const w = async (taskId: string, taskPath: string, writes: Array<[string, unknown]>) =>
      s.putWritesSerialized({
        threadId: "t",
        ns: "",
        checkpointId: a.id,
        taskId,
        taskPath,
        writes: await s.serializeWrites(writes),
        pending: true,
      });
    await w("b", "~2", [["x", "b0"]]);
    await w("a", "~1", [
      ["x", "a0"],
      ["y", "a1"],
    ]);
    await w("a", "~1", [["x", "a0-again"]]);
    await w("c", "", [[ERROR, "first"]]);
    await w("c", "", [[ERROR, "second"]]);
    expect((await s.getTuple("t", "", a.id))?.pendingWrites).toEqual([
      ["c", ERROR, "second"],
      ["a", "x", "a0"],
      ["a", "y", "a1"],
      ["b", "x", "b0"],
    ]);
  });

  it("completing every operation turns pending entries into cache, and trimming keeps the latest checkpoints and the blobs they read", async () => {
    const s = store({ cacheCheckpointsPerNamespace: 1 });
    const a = cp({ big: "base", m: [1] }, { big: 1, m: 1 });
    await put(s, "t", a, { big: 1, m: 1 }, true);
    const b = cp({ big: "base", m: [1, 2] }, { big: 1, m: 2 });
    await put(s, "t", b, { m: 2 }, true, a.id);
    const c = cp({ big: "base", m: [1, 2, 3] }, { big: 1, m: 3 });
    await put(s, "t", c, { m: 3 }, true, b.id);
    for (const op of s.pendingOps()) expect(s.complete(op)).toBe(true);
    expect(s.pendingEntries).toBe(0);
    expect(s.pendingBytes).toBe(0);
    expect(s.logSize).toBe(0);
    // b is evicted; a stays because c reads `big` from it.
    expect(await s.getTuple("t", "", b.id)).toBeUndefined();
    expect((await s.getTuple("t", "", a.id))?.checkpoint.id).toBe(a.id);
    expect((await s.getTuple("t", "", undefined))?.checkpoint.channel_values).toEqual({
      big: "base",
      m: [1, 2, 3],
    });
  });

  it("evicts whole idle threads beyond cacheMaxThreads, never one with pending entries", async () => {
    const s = store({ cacheMaxThreads: 2 });
    await put(s, "pending", cp({ m: 1 }, { m: 1 }), { m: 1 }, true);
    await put(s, "old", cp({ m: 1 }, { m: 1 }), { m: 1 }, false);
    await put(s, "new", cp({ m: 1 }, { m: 1 }), { m: 1 }, false);
    expect(await s.getTuple("old", "", undefined)).toBeUndefined();
    expect(await s.getTuple("pending", "", undefined)).toBeDefined();
    expect(await s.getTuple("new", "", undefined)).toBeDefined();
  });

  it("lists newest first with before, limit and a metadata filter matched like jsonb @>", async () => {
    const s = store();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = cp({}, {});
      ids.push(c.id);
      await s.putCheckpoint({
        threadId: "t",
        ns: "",
        parentId: undefined,
        checkpoint: c,
        metadata: { ...meta, step: i, tags: ["a", `n${i}`] } as never,
        newVersions: {},
        pending: true,
      });
    }
    const list = async (options: object) => {
      const out: string[] = [];
      for await (const t of s.list({ threadId: "t" }, options)) out.push(t.checkpoint.id);
      return out;
    };
    expect(await list({})).toEqual([...ids].reverse());
    expect(await list({ limit: 2 })).toEqual([ids[3], ids[2]]);
    expect(await list({ before: { configurable: { checkpoint_id: ids[2] } } })).toEqual([
      ids[1],
      ids[0],
    ]);
    expect(await list({ filter: { step: 1 } })).toEqual([ids[1]]);
    expect(await list({ filter: { tags: ["n2"] } })).toEqual([ids[2]]);
  });
});

describe("jsonContains", () => {
  it("matches objects by key, arrays by element and scalars by value", () => {
    expect(jsonContains({ a: 1, b: { c: [1, 2] } }, { b: { c: [2] } })).toBe(true);
    expect(jsonContains({ a: 1 }, { a: "1" })).toBe(false);
    expect(jsonContains({ a: 1 }, {})).toBe(true);
    expect(jsonContains({ a: null }, { a: null })).toBe(true);
    expect(jsonContains([1, 2], { 0: 1 })).toBe(false);
  });
});

describe("backoffDelay", () => {
  it("draws within [0, min(cap, base * 2^(attempt-1))]", () => {
    expect(backoffDelay(1, 50, 2_000, () => 0.999)).toBe(50);
    expect(backoffDelay(3, 50, 2_000, () => 0.999)).toBe(200);
    expect(backoffDelay(20, 50, 2_000, () => 0.999)).toBe(1_998);
    expect(backoffDelay(5, 50, 2_000, () => 0)).toBe(0);
  });
});

describe("classifyDbError", () => {
  it("treats terminated sessions, resets and silent networks as unavailable, never constraint or serialization errors", () => {
    for (const code of [
      "57P01",
      "57P05",
      "08006",
      "08003",
      "ECONNRESET",
      "ECONNREFUSED",
      "ENOTCONN",
    ]) {
      expect(classifyDbError({ code })).toBe("DB_UNAVAILABLE");
    }
    expect(classifyDbError(new Error("Query read timeout"))).toBe("DB_UNAVAILABLE");
    expect(classifyDbError(new Error("Connection terminated unexpectedly"))).toBe("DB_UNAVAILABLE");
    expect(classifyDbError({ code: "23505" })).toBe("DB_ERROR");
    expect(classifyDbError({ code: "40001" })).toBe("DB_CONFLICT");
    expect(classifyDbError({ code: "57014" })).toBe("DB_TIMEOUT");
  });
});

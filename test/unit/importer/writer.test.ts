import { describe, expect, it } from "vitest";
import type { ThreadRows } from "../../../src/importer/serialize.js";
import { WriteBatch } from "../../../src/importer/writer.js";

/** A thread with `cps` checkpoints, one blob and two writes per checkpoint. */
function thread(id: string, cps: number): ThreadRows {
  const ids = Array.from({ length: cps }, (_, i) => `c${i}`);
  return {
    threadId: id,
    formats: ["js"],
    createdAt: null,
    lastActivity: null,
    fingerprint: `full|=${ids.at(-1)}`,
    checkpoints: ids.map((c, i) => ({
      ns: "",
      id: c,
      parentId: i ? ids[i - 1]! : null,
      checkpoint: '{"v":4}',
      metadata: "{}",
    })),
    blobs: ids.map((_, i) => ({
      ns: "",
      channel: "messages",
      version: String(i + 1),
      type: "json",
      blob: "[]",
    })),
    writes: ids.flatMap((c) =>
      [0, 1].map((idx) => ({
        ns: "",
        checkpointId: c,
        taskId: "t",
        taskPath: "",
        idx,
        channel: "messages",
        type: "json",
        blob: "[]",
      })),
    ),
    bytes: 0,
  };
}

describe("WriteBatch: which tables go by COPY", () => {
  it("encodes a table from its first thread when the batch is expected to reach copyMinRows", () => {
    const batch = new WriteBatch(1000, 500);
    batch.add(thread("a", 8)); // 8 checkpoints x 500 threads expected: 4000 rows
    expect(batch.tables.checkpoints.encoding).toBe(true);
    expect(batch.tables.writes.encoding).toBe(true);
    expect(batch.tables.checkpoints.values).toEqual([]);
    expect(batch.tables.checkpoints.size).toBe(8);
  });

  it("keeps values for INSERT when the batch stays small, and counts every thread's rows", () => {
    const batch = new WriteBatch(1000, 500);
    for (let i = 0; i < 10; i++) batch.add(thread(`t${i}`, 1)); // 1 x 500 expected: 500 rows
    expect(batch.tables.checkpoints.encoding).toBe(false);
    expect(batch.tables.writes.encoding).toBe(true); // 2 x 500 = 1000: COPY
    expect(batch.tables.checkpoints.chunks()).toBeUndefined();
    expect(batch.tables.checkpoints.values.map((r) => r[0])).toEqual(
      Array.from({ length: 10 }, (_, i) => `t${i}`),
    );
    expect(batch.threads.map((t) => [t.checkpoints, t.blobs, t.writes])).toEqual(
      Array.from({ length: 10 }, () => [1, 1, 2]),
    );
  });

  it("switches a table to COPY once more threads than expected make it large", () => {
    const batch = new WriteBatch(100, 10);
    for (let i = 0; i < 20; i++) batch.add(thread(`t${i}`, 3));
    // After 10 threads: 30 rows, expected 30 (10 threads); after 20: 60 x 20/20; at 34 threads
    // it would be 102. Until then every row stays a value.
    expect(batch.tables.checkpoints.encoding).toBe(false);
    for (let i = 20; i < 34; i++) batch.add(thread(`t${i}`, 3));
    expect(batch.tables.checkpoints.encoding).toBe(true);
    expect(batch.tables.checkpoints.size).toBe(102);
  });

  it("never encodes with copyMinRows Infinity (the embedded database)", () => {
    const batch = new WriteBatch(Number.POSITIVE_INFINITY, 500);
    for (let i = 0; i < 50; i++) batch.add(thread(`t${i}`, 20));
    for (const table of Object.values(batch.tables)) expect(table.encoding).toBe(false);
    expect(batch.tables.writes.values).toHaveLength(2000);
  });
});

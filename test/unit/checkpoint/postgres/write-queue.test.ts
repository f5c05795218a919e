import {
  WriteQueue,
  mergeWrites,
  type QueuedWrite,
  type WriteBatch,
} from "../../../../src/checkpoint/postgres/write-queue.js";

function row(taskId: string, idx: number, channel: string, txt: string): QueuedWrite {
  return {
    threadId: "t",
    ns: "",
    checkpointId: "c",
    taskId,
    taskPath: "",
    idx,
    channel,
    type: "json",
    txt,
    b64: null,
  };
}

function batch(rows: QueuedWrite[]): WriteBatch {
  return { threadId: "t", ns: "", rows, resolve: () => undefined, reject: () => undefined };
}

describe("mergeWrites", () => {
  it("keeps the first value of a regular slot and the last value of a special one (idx < 0)", () => {
    const merged = mergeWrites([
      batch([row("a", 0, "x", "1"), row("a", -3, "__interrupt__", "first")]),
      batch([
        row("a", 0, "x", "2"),
        row("a", -3, "__interrupt__", "second"),
        row("b", 0, "x", "3"),
      ]),
    ]);
    expect(merged.map((r) => `${r.taskId}/${r.idx}=${r.txt}`)).toEqual([
      "a/0=1",
      "a/-3=second",
      "b/0=3",
    ]);
  });
});

/** A queue whose flushes are recorded and settle every batch at once. */
function recordingQueue(): { queue: WriteQueue; flushes: WriteBatch[][] } {
  const flushes: WriteBatch[][] = [];
  const queue = new WriteQueue((batches) => {
    flushes.push(batches);
    for (const b of batches) b.resolve();
    return Promise.resolve();
  });
  return { queue, flushes };
}

describe("WriteQueue", () => {
  const tick = () => new Promise((r) => setImmediate(r));

  it("holds writes only for threads with a put in flight", () => {
    const queue = new WriteQueue(() => Promise.resolve());
    expect(queue.holds("t")).toBe(false);
    queue.putStarted("t");
    queue.putStarted("t");
    queue.putSettled("t");
    expect(queue.holds("t")).toBe(true);
    queue.putSettled("t");
    expect(queue.holds("t")).toBe(false);
  });

  it("flushes the writes of every settled thread in one call once the event loop is idle", async () => {
    const { queue, flushes } = recordingQueue();
    queue.putStarted("t");
    queue.putStarted("u");
    const done = queue.add("t", "", [row("a", 0, "x", "1")]);
    const other = queue.add("u", "", [row("a", 0, "x", "1")]);
    queue.putSettled("t");
    queue.putSettled("u");
    await Promise.all([done, other]);
    expect(flushes).toHaveLength(1);
    expect(flushes[0]).toHaveLength(2);
  });

  it("holds a thread's writes while its put is in flight and hands them to the next put", async () => {
    const { queue, flushes } = recordingQueue();
    queue.putStarted("t");
    void queue.add("t", "", [row("a", 0, "x", "1")]);
    await tick();
    await tick();
    expect(flushes).toHaveLength(0);
    queue.putSettled("t");
    const taken = queue.take("t", "");
    expect(taken).toHaveLength(1);
    await tick();
    expect(flushes).toHaveLength(0);
  });

  it("flushes a thread's writes after its put settles when no put takes them", async () => {
    const { queue, flushes } = recordingQueue();
    queue.putStarted("t");
    const done = queue.add("t", "", [row("a", 0, "x", "1")]);
    queue.putSettled("t");
    await done;
    expect(flushes).toHaveLength(1);
  });

  it("take() with a namespace leaves the thread's other namespaces queued", () => {
    const queue = new WriteQueue(() => Promise.resolve());
    void queue.add("t", "", [row("a", 0, "x", "1")]);
    void queue.add("t", "sub", [row("a", 0, "x", "1")]);
    expect(queue.take("t", "sub")).toHaveLength(1);
    expect(queue.has("t")).toBe(true);
    expect(queue.take("t")).toHaveLength(1);
    expect(queue.size).toBe(0);
  });
});

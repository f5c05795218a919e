import { emptyCheckpoint, uuid6, type Checkpoint } from "@langchain/langgraph-checkpoint";
import type { RunnableConfig } from "@langchain/core/runnables";
import type pg from "pg";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { isThreadlineError } from "../../../src/errors.js";
import { TEST_DATABASE_URL, installedSchema, testPool } from "../../helpers/db.js";

const { admin, schema } = installedSchema("tl_coalesce");

const meta = { source: "loop" as const, step: 0, parents: {} };

function checkpoint(values: Record<string, unknown>, version: number): Checkpoint {
  const cp = emptyCheckpoint();
  cp.id = uuid6(-1);
  cp.channel_values = values;
  cp.channel_versions = Object.fromEntries(Object.keys(values).map((k) => [k, version]));
  return cp;
}

/** A pool whose statements are counted on each of its connections (observed, not replaced). */
function countingPool(): { pool: pg.Pool; count: () => number } {
  const pool = testPool(4);
  let n = 0;
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      n++;
      return query(...args);
    };
  });
  return { pool, count: () => n };
}

/** Runs `fn` with a checkpointer on a small pool of its own, closed afterwards. */
async function withSaver(fn: (saver: PostgresCheckpointer) => Promise<void>): Promise<void> {
  const saver = new PostgresCheckpointer(testPool(2), { schema });
  try {
    await fn(saver);
  } finally {
    await saver.pool.end();
  }
}

/** Starts a thread's first put without awaiting it: from here on a put of the thread is pending. */
function startFirstPut(saver: PostgresCheckpointer, thread: string) {
  const cp = checkpoint({ messages: ["x"] }, 1);
  const pending = saver.put({ configurable: { thread_id: thread } }, cp, meta, { messages: 1 });
  const config = { configurable: { thread_id: thread, checkpoint_ns: "", checkpoint_id: cp.id } };
  return { pending, config };
}

async function writesInDb(threadId: string): Promise<Array<{ task_id: string; channel: string }>> {
  const { rows } = await admin.query<{ task_id: string; channel: string }>(
    `SELECT task_id, channel FROM "${schema}".checkpoint_writes WHERE thread_id = $1 ORDER BY task_id, idx`,
    [threadId],
  );
  return rows;
}

describe("putWrites coalescing", () => {
  it("writes issued while a put of their thread is pending ride with a put: no statement of their own, acknowledged once committed", async () => {
    const { pool, count } = countingPool();
    const saver = new PostgresCheckpointer(pool, { schema });
    try {
      const thread = `ride-${uuid6(-1)}`;
      const before = count();
      const cp1 = checkpoint({ messages: ["hi"] }, 1);
      const p1 = saver.put({ configurable: { thread_id: thread } }, cp1, meta, { messages: 1 });
      const cfg1: RunnableConfig = {
        configurable: { thread_id: thread, checkpoint_ns: "", checkpoint_id: cp1.id },
      };
      const w1 = saver.putWrites(cfg1, [["messages", ["a"]]], "task-a");
      const w2 = saver.putWrites(
        cfg1,
        [
          ["messages", ["b"]],
          ["branch", null],
        ],
        "task-b",
      );
      await p1;
      const cp2 = checkpoint({ messages: ["hi", "a", "b"] }, 2);
      await saver.put(cfg1, cp2, meta, { messages: 2 });
      await Promise.all([w1, w2]);
      // put 1 and put 2, one of them carrying both calls' rows.
      expect(count() - before).toBe(2);
      expect(await writesInDb(thread)).toEqual([
        { task_id: "task-a", channel: "messages" },
        { task_id: "task-b", channel: "messages" },
        { task_id: "task-b", channel: "branch" },
      ]);
      const tuple = await saver.getTuple(cfg1);
      expect(tuple?.pendingWrites?.map(([task, channel]) => `${task}:${channel}`)).toEqual([
        "task-a:messages",
        "task-b:messages",
        "task-b:branch",
      ]);
    } finally {
      await pool.end();
    }
  });

  it("a putWrites with no put coming is committed on its own and visible to another connection once acknowledged", () =>
    withSaver(async (saver) => {
      const thread = `alone-${uuid6(-1)}`;
      await saver.putWrites(
        { configurable: { thread_id: thread, checkpoint_id: "cp-1" } },
        [["ch", 1]],
        "t1",
      );
      expect(await writesInDb(thread)).toEqual([{ task_id: "t1", channel: "ch" }]);
    }));

  it("writes queued behind the puts of many threads all commit; one bad write fails only its own call", async () => {
    const { pool, count } = countingPool();
    const saver = new PostgresCheckpointer(pool, { schema });
    try {
      const base = `many-${uuid6(-1)}`;
      // Writes issued while each thread's put is pending.
      const queueBehindPuts = async (threads: string[], taskFor: (i: number) => string) => {
        const puts = threads.map((t) => startFirstPut(saver, t).pending);
        const calls = threads.map((t, i) =>
          saver.putWrites(
            { configurable: { thread_id: t, checkpoint_id: "cp" } },
            [["ch", i]],
            taskFor(i),
          ),
        );
        const settled = Promise.allSettled(calls);
        await Promise.all(puts);
        return settled;
      };
      const goodThreads = [0, 1, 2, 3].map((i) => `${base}-${i}`);
      const before = count();
      const good = await queueBehindPuts(goodThreads, () => "task");
      expect(good.map((r) => r.status)).toEqual(Array(4).fill("fulfilled"));
      // Four puts, and at most one more statement per call for the writes.
      expect(count() - before).toBeLessThanOrEqual(8);

      // NUL cannot be stored in a text column (22021): that call fails, the others commit.
      const badThreads = [0, 1, 2].map((i) => `${base}-bad-${i}`);
      const results = await queueBehindPuts(badThreads, (i) =>
        i === 1 ? "bad\u0000task" : "task",
      );
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      const reason = (results[1] as PromiseRejectedResult).reason as unknown;
      expect(isThreadlineError(reason) && reason.code).toBe("INVALID_INPUT");
      expect(await writesInDb(`${base}-bad-0`)).toHaveLength(1);
      expect(await writesInDb(`${base}-bad-1`)).toHaveLength(0);
      expect(await writesInDb(`${base}-bad-2`)).toHaveLength(1);
    } finally {
      await pool.end();
    }
  });

  it("a bad write riding with a put fails alone: the checkpoint is stored", () =>
    withSaver(async (saver) => {
      const thread = `split-${uuid6(-1)}`;
      const { pending: p1, config: cfg1 } = startFirstPut(saver, thread);
      // Outcomes are taken as they settle (a rejection nobody listens to yet would be reported).
      const bad = saver.putWrites(cfg1, [["ch", 1]], "bad\u0000task").then(
        () => undefined,
        (err: unknown) => err,
      );
      const good = saver.putWrites(cfg1, [["ch", 2]], "good");
      await p1;
      const cp2 = checkpoint({ messages: ["x", "y"] }, 2);
      await expect(saver.put(cfg1, cp2, meta, { messages: 2 })).resolves.toBeDefined();
      expect(await bad).toMatchObject({ code: "INVALID_INPUT" });
      await expect(good).resolves.toBeUndefined();
      const latest = await saver.getTuple({ configurable: { thread_id: thread } });
      expect(latest?.checkpoint.id).toBe(cp2.id);
      expect(await writesInDb(thread)).toEqual([{ task_id: "good", channel: "ch" }]);
    }));

  it("writes issued before deleteThread are deleted with the thread, not stored after it", () =>
    withSaver(async (saver) => {
      const thread = `del-${uuid6(-1)}`;
      const { pending, config } = startFirstPut(saver, thread);
      const w = saver.putWrites(config, [["ch", 1]], "t");
      await pending;
      await saver.deleteThread(thread);
      await w;
      expect(await writesInDb(thread)).toEqual([]);
      expect(await saver.getTuple({ configurable: { thread_id: thread } })).toBeUndefined();
    }));

  it("end() stores queued writes before it closes its pool", async () => {
    const saver = PostgresCheckpointer.fromConnString(TEST_DATABASE_URL, { schema });
    const thread = `end-${uuid6(-1)}`;
    const { pending, config } = startFirstPut(saver, thread);
    const w = saver.putWrites(config, [["ch", 1]], "t");
    await pending;
    await saver.end();
    await expect(w).resolves.toBeUndefined();
    expect(await writesInDb(thread)).toHaveLength(1);
  });

  it("coalesceWrites: false sends each call as its own statement", async () => {
    const { pool, count } = countingPool();
    const saver = new PostgresCheckpointer(pool, { schema, coalesceWrites: false });
    try {
      const thread = `direct-${uuid6(-1)}`;
      const before = count();
      await Promise.all(
        [1, 2, 3].map((i) =>
          saver.putWrites(
            { configurable: { thread_id: thread, checkpoint_id: "c" } },
            [["ch", i]],
            `t${i}`,
          ),
        ),
      );
      expect(count() - before).toBe(3);
      expect(await writesInDb(thread)).toHaveLength(3);
    } finally {
      await pool.end();
    }
  });
});

describe("reads of older checkpoints this process wrote", () => {
  const texts = (tuple: Awaited<ReturnType<PostgresCheckpointer["getTuple"]>>) =>
    tuple?.checkpoint.channel_values["messages"] as unknown[];

  it("by id, a warm process returns exactly what a cold one reads, across delta chains and full rewrites", async () => {
    const pool = testPool(4);
    const warm = new PostgresCheckpointer(pool, { schema, maxDeltaDepth: 3 });
    const cold = new PostgresCheckpointer(pool, { schema, deltaCacheSize: 0 });
    try {
      const thread = `prefix-${uuid6(-1)}`;
      const messages: string[] = [];
      const ids: string[] = [];
      let config: RunnableConfig = { configurable: { thread_id: thread } };
      for (let v = 1; v <= 12; v++) {
        messages.push(`m${v}a`, `m${v}b`);
        const cp = checkpoint({ messages: messages.slice() }, v);
        // The same element objects each step, as LangGraph's reducer keeps them.
        config = await warm.put(config, cp, meta, { messages: v });
        ids.push(cp.id);
      }
      for (const [i, id] of ids.entries()) {
        const cfg = { configurable: { thread_id: thread, checkpoint_ns: "", checkpoint_id: id } };
        const fromWarm = texts(await warm.getTuple(cfg));
        expect(fromWarm).toEqual(texts(await cold.getTuple(cfg)));
        expect(fromWarm).toHaveLength(2 * (i + 1));
      }
    } finally {
      await pool.end();
    }
  });

  it("a row rewritten since this process stored it is read from the database, not from memory", async () => {
    const pool = testPool(2);
    const warm = new PostgresCheckpointer(pool, { schema });
    try {
      const thread = `tamper-${uuid6(-1)}`;
      const messages: string[] = [];
      const ids: string[] = [];
      let config: RunnableConfig = { configurable: { thread_id: thread } };
      for (let v = 1; v <= 4; v++) {
        messages.push(`m${v}`);
        const cp = checkpoint({ messages: messages.slice() }, v);
        config = await warm.put(config, cp, meta, { messages: v });
        ids.push(cp.id);
      }
      await admin.query(
        `UPDATE "${schema}".checkpoint_blobs
            SET type = 'json', blob = convert_to('["rewritten"]', 'UTF8'), delta_base = NULL, delta_root = NULL
          WHERE thread_id = $1 AND channel = 'messages' AND version = '2'`,
        [thread],
      );
      const cfg = { configurable: { thread_id: thread, checkpoint_ns: "", checkpoint_id: ids[1] } };
      expect(texts(await warm.getTuple(cfg))).toEqual(["rewritten"]);
      const first = {
        configurable: { thread_id: thread, checkpoint_ns: "", checkpoint_id: ids[0] },
      };
      expect(texts(await warm.getTuple(first))).toEqual(["m1"]);
    } finally {
      await pool.end();
    }
  });
});

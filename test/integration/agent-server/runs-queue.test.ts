import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { AGENT_FILE, serveGraphs, type Served } from "./helpers.js";

/**
 * Background runs on the queue in Postgres, through the real SDK Client against two
 * `threadline serve` processes on one schema: create, list, get, delete, batch, join from the
 * other instance, cancel of a run executing on the other instance, and the multitask strategies
 * (reject, enqueue, interrupt, rollback) for background and streamed runs.
 */

interface Msg {
  type: string;
  content: unknown;
}
type Values = { messages: Msg[] };

const schema = uniqueSchema("tl_runq");
const pool = testPool(2);
let a: Served;
let b: Served;
let ca: Client;
let cb: Client;

/** A user message whose answer streams `words` tokens (40 ms each by default). */
function long(words: number): { messages: Array<{ role: string; content: string }> } {
  return {
    messages: [
      { role: "user", content: Array.from({ length: words }, (_, i) => `w${i}`).join(" ") },
    ],
  };
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pid part of agent_runs.worker_id (`host:pid:random`). */
async function workerPid(threadId: string, runId: string): Promise<number> {
  const { rows } = await pool.query<{ worker_id: string | null }>(
    `SELECT worker_id FROM "${schema}".agent_runs WHERE thread_id = $1 AND run_id = $2`,
    [threadId, runId],
  );
  return Number(rows[0]?.worker_id?.split(":")[1]);
}

beforeAll(async () => {
  await requirePostgres();
  const args = ["--graph", `agent=${AGENT_FILE}:graph`];
  a = await serveGraphs(schema, args);
  b = await serveGraphs(schema, args);
  ca = new Client({ apiUrl: a.url, apiKey: null });
  cb = new Client({ apiUrl: b.url, apiKey: null });
}, 180_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await dropSchema(pool, schema);
  await pool.end();
});

describe("background runs on the Postgres queue, two instances", () => {
  it("runs.create returns a pending run that completes; list, get and delete; joined from the other instance", async () => {
    const thread = await ca.threads.create();
    const run = await ca.runs.create(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "My name is Frank" }] },
    });
    expect(run.status).toBe("pending");
    expect(run.thread_id).toBe(thread.thread_id);
    const joined = (await cb.runs.join(thread.thread_id, run.run_id)) as Values;
    expect(joined.messages.at(-1)?.content).toBe("Hello there, you said: My name is Frank");
    expect((await cb.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    expect((await cb.threads.get(thread.thread_id)).status).toBe("idle");

    const second = await cb.runs.create(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "What is my name?" }] },
    });
    const answer = (await ca.runs.join(thread.thread_id, second.run_id)) as Values;
    expect(answer.messages.at(-1)?.content).toBe("Your name is Frank.");

    const listed = await ca.runs.list(thread.thread_id);
    expect(listed.map((r) => r.run_id)).toEqual([second.run_id, run.run_id]);
    expect((await ca.runs.list(thread.thread_id, { status: "success", limit: 1 })).length).toBe(1);

    await cb.runs.delete(thread.thread_id, run.run_id);
    await expect(ca.runs.get(thread.thread_id, run.run_id)).rejects.toThrow(/404/);
    expect((await ca.runs.list(thread.thread_id)).map((r) => r.run_id)).toEqual([second.run_id]);
  });

  it("POST /runs/batch enqueues stateless runs that complete and leave no thread behind", async () => {
    const before = await ca.threads.count();
    const created = await ca.runs.createBatch([
      { assistantId: "agent", input: { messages: [{ role: "user", content: "one" }] } },
      { assistantId: "agent", input: { messages: [{ role: "user", content: "two" }] } },
      { assistantId: "agent", input: { messages: [{ role: "user", content: "three" }] } },
    ]);
    expect(created).toHaveLength(3);
    expect(new Set(created.map((r) => r.run_id)).size).toBe(3);
    expect(created.every((r) => r.status === "pending")).toBe(true);
    await until(
      "the batch's temporary threads to go",
      async () => {
        const { rows } = await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM "${schema}".agent_runs WHERE run_id = ANY ($1::uuid[])`,
          [created.map((r) => r.run_id)],
        );
        return Number(rows[0]!.n);
      },
      (n) => n === 0,
    );
    expect(await ca.threads.count()).toBe(before);
  });

  it("cancel from one instance of a run executing on the other ends it interrupted, the thread idle", async () => {
    const thread = await ca.threads.create();
    const run = await ca.runs.create(thread.thread_id, "agent", {
      input: long(200),
      streamMode: ["messages-tuple"],
    });
    await until(
      "the run to start",
      () => ca.runs.get(thread.thread_id, run.run_id),
      (r) => r.status === "running",
    );
    // Cancel from the instance that does not execute it.
    const pid = await workerPid(thread.thread_id, run.run_id);
    const [executing, other] = pid === a.child.pid ? [ca, cb] : [cb, ca];
    expect([a.child.pid, b.child.pid]).toContain(pid);
    const started = Date.now();
    await other.runs.cancel(thread.thread_id, run.run_id, true);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await executing.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
    expect((await other.threads.get(thread.thread_id)).status).toBe("idle");
    // The thread takes the next run.
    const next = (await other.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "again" }] },
    })) as Values;
    expect(next.messages.at(-1)?.content).toBe("Hello there, you said: again");
  });

  it("POST /runs/cancel cancels pending and running runs of a thread", async () => {
    const thread = await ca.threads.create();
    const first = await ca.runs.create(thread.thread_id, "agent", {
      input: long(200),
      streamMode: ["messages-tuple"],
    });
    const queued = await cb.runs.create(thread.thread_id, "agent", {
      input: long(5),
      multitaskStrategy: "enqueue",
    });
    await cb.runs.cancelMany({ threadId: thread.thread_id, runIds: [first.run_id, queued.run_id] });
    await until(
      "both runs to end",
      () => ca.runs.list(thread.thread_id),
      (runs) => runs.every((r) => r.status === "interrupted"),
    );
    expect((await ca.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("reject refuses a second run on a busy thread with 409, whichever instance it comes to", async () => {
    const thread = await ca.threads.create();
    const run = await ca.runs.create(thread.thread_id, "agent", {
      input: long(60),
      streamMode: ["messages-tuple"],
    });
    await expect(
      cb.runs.create(thread.thread_id, "agent", { input: long(2), multitaskStrategy: "reject" }),
    ).rejects.toThrow(/409/);
    await expect(cb.runs.wait(thread.thread_id, "agent", { input: long(2) })).rejects.toThrow(
      /409/,
    );
    await ca.runs.join(thread.thread_id, run.run_id);
    expect((await ca.runs.list(thread.thread_id)).length).toBe(1);
  });

  it("three enqueued runs complete in order, one at a time, from both instances", async () => {
    const thread = await ca.threads.create();
    const ids: string[] = [];
    for (const [i, client] of [ca, cb, ca].entries()) {
      const run = await client.runs.create(thread.thread_id, "agent", {
        input: { messages: [{ role: "user", content: `message ${i}` }] },
        streamMode: ["messages-tuple"],
        multitaskStrategy: "enqueue",
      });
      ids.push(run.run_id);
    }
    const last = (await cb.runs.join(thread.thread_id, ids[2]!)) as Values;
    expect(last.messages.map((m) => m.content)).toEqual([
      "message 0",
      "Hello there, you said: message 0",
      "message 1",
      "Hello there, you said: message 1",
      "message 2",
      "Hello there, you said: message 2",
    ]);
    const { rows } = await pool.query<{ run_id: string; started_at: Date; ended_at: Date }>(
      `SELECT run_id, started_at, ended_at FROM "${schema}".agent_runs
       WHERE thread_id = $1 ORDER BY started_at`,
      [thread.thread_id],
    );
    expect(rows.map((r) => r.run_id)).toEqual(ids);
    for (let i = 1; i < rows.length; i++)
      expect(rows[i]!.started_at.getTime()).toBeGreaterThanOrEqual(rows[i - 1]!.ended_at.getTime());
  });

  it("interrupt stops the running run (interrupted, its checkpoints kept) and runs the new one", async () => {
    const thread = await ca.threads.create();
    const first = await ca.runs.create(thread.thread_id, "agent", {
      input: long(200),
      streamMode: ["messages-tuple"],
    });
    await until(
      "the first run to start",
      () => ca.runs.get(thread.thread_id, first.run_id),
      (r) => r.status === "running",
    );
    const second = await cb.runs.create(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "instead" }] },
      multitaskStrategy: "interrupt",
    });
    const values = (await cb.runs.join(thread.thread_id, second.run_id)) as Values;
    expect((await ca.runs.get(thread.thread_id, first.run_id)).status).toBe("interrupted");
    // The first run's input stays in the thread; its reply never completed.
    expect(values.messages.map((m) => m.type)).toEqual(["human", "human", "ai"]);
    expect(values.messages.at(-1)?.content).toBe("Hello there, you said: instead");
  });

  it("rollback deletes the running run and its checkpoints, then runs the new one", async () => {
    const thread = await ca.threads.create();
    await ca.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "before" }] },
    });
    const historyBefore = await ca.threads.getHistory(thread.thread_id, { limit: 100 });
    const first = await ca.runs.create(thread.thread_id, "agent", {
      input: long(200),
      streamMode: ["messages-tuple"],
    });
    await until(
      "the first run to start",
      () => ca.runs.get(thread.thread_id, first.run_id),
      (r) => r.status === "running",
    );
    const second = await cb.runs.create(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "instead" }] },
      multitaskStrategy: "rollback",
    });
    const values = (await ca.runs.join(thread.thread_id, second.run_id)) as Values;
    await expect(ca.runs.get(thread.thread_id, first.run_id)).rejects.toThrow(/404/);
    expect(values.messages.map((m) => m.content)).toEqual([
      "before",
      "Hello there, you said: before",
      "instead",
      "Hello there, you said: instead",
    ]);
    const historyAfter = await ca.threads.getHistory(thread.thread_id, { limit: 100 });
    // Every checkpoint from before the rolled-back run is still there, and none of its own: the
    // history is the one before it plus the new run's checkpoints.
    const after = historyAfter.map((s) => s.checkpoint.checkpoint_id);
    expect(after.slice(-historyBefore.length)).toEqual(
      historyBefore.map((s) => s.checkpoint.checkpoint_id),
    );
    expect(historyAfter.some((s) => JSON.stringify(s.values).includes("w199"))).toBe(false);
  });

  it("a streamed run with enqueue waits for the busy thread, then streams its own events", async () => {
    const thread = await ca.threads.create();
    const first = await ca.runs.create(thread.thread_id, "agent", {
      input: long(30),
      streamMode: ["messages-tuple"],
    });
    const events: string[] = [];
    let values: Values | undefined;
    for await (const part of cb.runs.stream(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "queued" }] },
      streamMode: ["values"],
      multitaskStrategy: "enqueue",
    })) {
      events.push(part.event);
      if (part.event === "values") values = part.data as Values;
    }
    expect(events[0]).toBe("metadata");
    expect((await ca.runs.get(thread.thread_id, first.run_id)).status).toBe("success");
    expect(values?.messages.at(-1)?.content).toBe("Hello there, you said: queued");
    expect(values?.messages).toHaveLength(4);
  });
});

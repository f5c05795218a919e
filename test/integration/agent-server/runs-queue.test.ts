import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { AGENT_FILE, long, serveGraphs, until, type Served } from "./helpers.js";

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

/** The text of a `messages` (messages-tuple) event: its chunk's content. */
function token(data: unknown): string {
  const [chunk] = data as [{ content?: unknown }];
  return typeof chunk.content === "string" ? chunk.content : "";
}

describe("run events: join and resume on any instance", () => {
  it("a resumable stream read for a few events, dropped, resumes on the other instance: every token once, in order", async () => {
    const thread = await ca.threads.create();
    let runId = "";
    let lastId = "";
    const tokens: string[] = [];
    const ids: number[] = [];
    const controller = new AbortController();
    for await (const part of ca.runs.stream(thread.thread_id, "agent", {
      input: long(40),
      streamMode: ["messages-tuple"],
      streamResumable: true,
      onDisconnect: "continue",
      signal: controller.signal,
      onRunCreated: (meta) => (runId = meta.run_id),
    })) {
      // The SDK passes each event's `id:` through (its types do not show it for runs.stream).
      const id = (part as { id?: string }).id;
      if (id !== undefined) {
        lastId = id;
        ids.push(Number(id));
      }
      if (part.event === "messages") tokens.push(token(part.data));
      if (tokens.length === 5) break;
    }
    controller.abort();
    expect(runId).not.toBe("");
    // The run goes on without its client.
    expect((await cb.runs.get(thread.thread_id, runId)).status).toBe("running");
    for await (const part of cb.runs.joinStream(thread.thread_id, runId, { lastEventId: lastId })) {
      if (part.id !== undefined) ids.push(Number(part.id));
      if (part.event === "messages") tokens.push(token(part.data));
    }
    expect(ids).toEqual(ids.map((_, i) => i));
    const state = await cb.threads.getState<Values>(thread.thread_id);
    const reply = state.values.messages.at(-1)!.content as string;
    expect(reply).toMatch(/^Hello there, you said: w0 .* w39$/);
    expect(tokens.join("")).toBe(reply);
    expect((await cb.runs.get(thread.thread_id, runId)).status).toBe("success");
  });

  it("GET /threads/{id}/stream follows the thread's next run, and resumes after Last-Event-ID", async () => {
    const thread = await ca.threads.create();
    const controller = new AbortController();
    const seen: Array<{ id: string; event: string; text: string }> = [];
    const reading = (async () => {
      for await (const part of cb.threads.joinStream(thread.thread_id, {
        signal: controller.signal,
      })) {
        seen.push({
          id: part.id ?? "",
          event: part.event,
          text: part.event === "messages" ? token(part.data) : "",
        });
        if (part.event === "values" && (part.data as Values).messages.at(-1)?.type === "ai") break;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const run = await ca.runs.create(thread.thread_id, "agent", {
      input: long(8),
      streamMode: ["messages-tuple", "values"],
    });
    await reading;
    controller.abort();
    expect(seen[0]?.event).toBe("metadata");
    expect(seen.every((e) => e.id.startsWith(`${run.run_id}:`))).toBe(true);
    const text = seen.map((e) => e.text).join("");
    expect(text).toBe("Hello there, you said: w0 w1 w2 w3 w4 w5 w6 w7");
    // Resumed after the third event: the rest of the same run, from the first instance.
    await ca.runs.join(thread.thread_id, run.run_id);
    const rest: string[] = [];
    const again = new AbortController();
    for await (const part of ca.threads.joinStream(thread.thread_id, {
      lastEventId: seen[2]!.id,
      signal: again.signal,
    })) {
      rest.push(part.id ?? "");
      if (part.event === "values" && (part.data as Values).messages.at(-1)?.type === "ai") break;
    }
    again.abort();
    expect(rest[0]).toBe(seen[3]!.id);
    expect(rest.slice(0, seen.length - 3)).toEqual(seen.slice(3).map((e) => e.id));
  });
});

describe("load", () => {
  it("200 concurrent background runs over 50 threads through both instances: each completes once, never two at a time on a thread, 0 errors", async () => {
    const clients = [a, b].map(
      (s) => new Client({ apiUrl: s.url, apiKey: null, callerOptions: { maxConcurrency: 25 } }),
    );
    const threads = await Promise.all(
      Array.from({ length: 50 }, (_, i) => clients[i % 2]!.threads.create()),
    );
    const started = Date.now();
    const runs = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        clients[i % 2]!.runs.create(threads[i % 50]!.thread_id, "agent", {
          input: { messages: [{ role: "user", content: `load ${i}` }] },
          multitaskStrategy: "enqueue",
        }),
      ),
    );
    const ids = runs.map((r) => r.run_id);
    expect(new Set(ids).size).toBe(200);
    const rows = await until(
      "every run to end",
      async () =>
        (
          await pool.query<{
            thread_id: string;
            run_id: string;
            status: string;
            worker_id: string;
            started_at: Date;
            ended_at: Date;
          }>(
            `SELECT thread_id, run_id, status, worker_id, started_at, ended_at
             FROM "${schema}".agent_runs WHERE run_id = ANY ($1::uuid[])`,
            [ids],
          )
        ).rows,
      (r) => r.length === 200 && r.every((x) => x.status !== "pending" && x.status !== "running"),
      60_000,
    );
    const tookMs = Date.now() - started;
    const byWorker = new Map<string, number>();
    for (const r of rows) byWorker.set(r.worker_id, (byWorker.get(r.worker_id) ?? 0) + 1);
    console.log(
      `load: 200 runs over 50 threads in ${tookMs} ms; per worker ${JSON.stringify([...byWorker.values()])}`,
    );
    expect(rows.filter((r) => r.status !== "success")).toEqual([]);
    // Each run executed once: one metadata event (its start) per run.
    const { rows: starts } = await pool.query<{ run_id: string; n: string }>(
      `SELECT run_id, count(*) AS n FROM "${schema}".threadline_run_events
       WHERE thread_id = ANY ($1::text[]) AND event = 'metadata' GROUP BY run_id`,
      [threads.map((t) => t.thread_id)],
    );
    expect(starts.filter((s) => ids.includes(s.run_id)).map((s) => Number(s.n))).toEqual(
      Array.from({ length: 200 }, () => 1),
    );
    // Never two at a time on one thread: each run starts after the previous one ended.
    let overlaps = 0;
    for (const t of threads) {
      const mine = rows
        .filter((r) => r.thread_id === t.thread_id)
        .sort((p, q) => p.started_at.getTime() - q.started_at.getTime());
      expect(mine).toHaveLength(4);
      for (let i = 1; i < mine.length; i++)
        if (mine[i]!.started_at.getTime() < mine[i - 1]!.ended_at.getTime()) overlaps += 1;
    }
    expect(overlaps).toBe(0);
    // Both instances worked.
    expect(byWorker.size).toBe(2);
  }, 120_000);
});

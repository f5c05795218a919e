import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { AGENT_FILE, long, serveGraphs, until, type Served } from "./helpers.js";

/**
 * Runs when an instance dies or stops: two `threadline serve` processes on one schema with short
 * bounds (heartbeat 500 ms, staleAfter 3 s, shutdownTimeout 2 s, event retention 2 s). kill -9 of
 * the executing instance ends its run `error` within the bound and keeps every acknowledged
 * checkpoint; SIGTERM lets a short run finish and marks a long one `error`; old events go.
 */

type Values = { messages: Array<{ type: string; content: unknown }> };

const schema = uniqueSchema("tl_runx");
const pool = testPool(2);
const ENV = {
  THREADLINE_RUNS_HEARTBEAT_INTERVAL: "500ms",
  THREADLINE_RUNS_STALE_AFTER: "3s",
  THREADLINE_RUNS_POLL_INTERVAL: "250ms",
  // Long enough that the SIGTERM case still reads its run's events on a loaded machine, short
  // enough that the retention case sees them go.
  THREADLINE_RUNS_EVENT_RETENTION: "10s",
  THREADLINE_SERVER_SHUTDOWN_TIMEOUT: "2s",
};
const STALE_MS = 3_000;
const ARGS = ["--graph", `agent=${AGENT_FILE}:graph`];
const served: Served[] = [];

async function runRow(threadId: string) {
  const { rows } = await pool.query<{ run_id: string; status: string; worker_id: string | null }>(
    `SELECT run_id, status, worker_id FROM "${schema}".agent_runs
     WHERE thread_id = $1 ORDER BY created_at DESC LIMIT 1`,
    [threadId],
  );
  return rows[0];
}

/** Starts a waited run on `on` without waiting for it (so that instance executes it). */
function fireWait(on: Served, threadId: string, words: number): Promise<unknown> {
  return fetch(`${on.url}/threads/${threadId}/runs/wait`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      assistant_id: "agent",
      input: long(words),
      stream_mode: ["messages-tuple"],
      on_disconnect: "continue",
    }),
  })
    .then((r) => r.text())
    .catch(() => undefined);
}

async function serve(): Promise<Served> {
  const s = await serveGraphs(schema, ARGS, ENV);
  served.push(s);
  return s;
}

beforeAll(async () => {
  await requirePostgres();
  await serve();
  await serve();
}, 180_000);

afterAll(async () => {
  for (const s of served) await s.stop();
  await dropSchema(pool, schema);
  await pool.end();
});

describe("runs across instance failures", () => {
  it("kill -9 of the executing instance: the run ends error within the bound, the thread is usable, no acknowledged checkpoint is lost", async () => {
    const [x, y] = served.slice(-2) as [Served, Served];
    const cy = new Client({ apiUrl: y.url, apiKey: null });
    const thread = await cy.threads.create();
    await cy.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "My name is Frank" }] },
    });
    void fireWait(x, thread.thread_id, 400);
    const run = await until(
      "the run to execute on the first instance",
      () => runRow(thread.thread_id),
      (r) => r?.status === "running",
    );
    expect(Number(run!.worker_id!.split(":")[1])).toBe(x.child.pid);
    // Let it checkpoint its input; what the other instance reads now is acknowledged.
    await new Promise((r) => setTimeout(r, 300));
    const acknowledged = (await cy.threads.getHistory(thread.thread_id, { limit: 100 })).map(
      (s) => s.checkpoint.checkpoint_id,
    );
    const killed = Date.now();
    x.child.kill("SIGKILL");
    await x.exited;
    const ended = await until(
      "the dead worker's run to end",
      () => cy.runs.get(thread.thread_id, run!.run_id),
      (r) => r.status !== "running",
      STALE_MS * 5,
    );
    const tookMs = Date.now() - killed;
    console.log(
      `kill -9: run ended ${ended.status} after ${tookMs} ms (staleAfter ${STALE_MS} ms)`,
    );
    expect(ended.status).toBe("error");
    // staleAfter + one reaper pass (min(staleAfter / 3, 5 s)) + slack for the loaded machine.
    expect(tookMs).toBeLessThan(STALE_MS + STALE_MS / 3 + 3_000);
    expect((await cy.threads.get(thread.thread_id)).status).toBe("error");
    const after = (await cy.threads.getHistory(thread.thread_id, { limit: 100 })).map(
      (s) => s.checkpoint.checkpoint_id,
    );
    expect(acknowledged.every((id) => after.includes(id))).toBe(true);
    const next = (await cy.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "What is my name?" }] },
    })) as Values;
    expect(next.messages.at(-1)?.content).toBe("Your name is Frank.");
    expect((await cy.threads.get(thread.thread_id)).status).toBe("idle");
    await serve();
  }, 120_000);

  it("SIGTERM: the instance stops claiming, a short run finishes, a long one ends error after server.shutdownTimeout; nothing stays running", async () => {
    const [x, y] = served.slice(-2) as [Served, Served];
    const cy = new Client({ apiUrl: y.url, apiKey: null });
    const short = await cy.threads.create();
    const longer = await cy.threads.create();
    void fireWait(x, longer.thread_id, 400);
    await until(
      "the long run to execute on the first instance",
      () => runRow(longer.thread_id),
      (r) => r?.status === "running" && Number(r.worker_id?.split(":")[1]) === x.child.pid,
    );
    void fireWait(x, short.thread_id, 12);
    // The short run may already be done when this looks: it only has to be the first instance's.
    await until(
      "the short run to execute on the first instance",
      () => runRow(short.thread_id),
      (r) =>
        (r?.status === "running" || r?.status === "success") &&
        Number(r.worker_id?.split(":")[1]) === x.child.pid,
    );
    const stopped = Date.now();
    await x.stop();
    const stopMs = Date.now() - stopped;
    console.log(`SIGTERM: instance exited after ${stopMs} ms (shutdownTimeout 2000 ms)`);
    expect((await runRow(short.thread_id))?.status).toBe("success");
    expect((await runRow(longer.thread_id))?.status).toBe("error");
    const { rows } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${schema}".agent_runs WHERE status = 'running'`,
    );
    expect(Number(rows[0]!.n)).toBe(0);
    const longRun = await runRow(longer.thread_id);
    const events: string[] = [];
    for await (const part of cy.runs.joinStream(longer.thread_id, longRun!.run_id, {
      lastEventId: "-1",
    }))
      events.push(part.event);
    expect(events.at(-1)).toBe("error");
    // The thread is usable; a run created on the other instance now runs there.
    const next = (await cy.runs.wait(longer.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "hi" }] },
    })) as Values;
    expect(next.messages.at(-1)?.content).toBe("Hello there, you said: hi");
    await serve();
  }, 120_000);

  it("the events of an ended run are deleted after runs.eventRetention; the run stays", async () => {
    const [x] = served.slice(-2) as [Served, Served];
    const cx = new Client({ apiUrl: x.url, apiKey: null });
    const thread = await cx.threads.create();
    await cx.runs.wait(thread.thread_id, "agent", { input: long(3) });
    const run = await runRow(thread.thread_id);
    const count = async () => {
      const { rows } = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".threadline_run_events WHERE thread_id = $1`,
        [thread.thread_id],
      );
      return Number(rows[0]!.n);
    };
    expect(await count()).toBeGreaterThan(0);
    await until("the events to go", count, (n) => n === 0, 40_000);
    expect((await cx.runs.get(thread.thread_id, run!.run_id)).status).toBe("success");
  }, 90_000);
});

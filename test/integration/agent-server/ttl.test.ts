import { execFile } from "node:child_process";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCleanup } from "../../../src/cleanup/index.js";
import { quoteSchema } from "../../../src/db/identifier.js";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";
import { AGENT_FILE, ROOT, serveGraphs, type Served } from "./helpers.js";

/**
 * A thread's own `ttl` (POST /threads, PATCH /threads/{id}) against the TTL sweep, through the
 * SDK on `threadline serve` and the sweep as the schedule (runCleanup) and `threadline cleanup`
 * run it. Time passing is simulated by moving every stored timestamp back (the sweep reads the
 * database clock), never by waiting.
 */

const schema = uniqueSchema("tl_thread_ttl");
const q = quoteSchema(schema);
const pool = testPool(2);
const DAY_MS = 86_400_000;
let served: Served;
let client: Client;

/** Moves every thread's clock back by `interval`, as if that much time had passed idle. */
async function age(interval: string): Promise<void> {
  await pool.query(
    `UPDATE ${q}.agent_threads SET created_at = created_at - $1::interval,
       updated_at = updated_at - $1::interval, expires_at = expires_at - $1::interval`,
    [interval],
  );
  await pool.query(
    `UPDATE ${q}.checkpoint_threads SET last_activity = last_activity - $1::interval`,
    [interval],
  );
}

/** What is left of a thread in every table that holds it. */
async function stored(threadId: string) {
  const { rows } = await pool.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM ${q}.agent_threads WHERE thread_id = $1)::int AS thread,
            (SELECT count(*) FROM ${q}.agent_runs WHERE thread_id = $1)::int AS runs,
            (SELECT count(*) FROM ${q}.checkpoints WHERE thread_id = $1)::int AS checkpoints,
            (SELECT count(*) FROM ${q}.checkpoint_writes WHERE thread_id = $1)::int AS writes,
            (SELECT count(*) FROM ${q}.checkpoint_threads WHERE thread_id = $1)::int AS activity`,
    [threadId],
  );
  return rows[0]!;
}

/** The `ttl` the API returns on a thread (the SDK's Thread type does not declare it). */
const ttlOf = (thread: object): unknown => (thread as { ttl?: unknown }).ttl;

const GONE = { thread: 0, runs: 0, checkpoints: 0, writes: 0, activity: 0 };

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "cleanup", "--schema", schema, ...args],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL, THREADLINE_LOG_LEVEL: "warn" },
        timeout: 60_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

async function turn(threadId: string): Promise<void> {
  await client.runs.wait(threadId, "agent", {
    input: { messages: [{ role: "user", content: "My name is Frank" }] },
  });
}

beforeAll(async () => {
  await requirePostgres();
  served = await serveGraphs(schema, ["--graph", `agent=${AGENT_FILE}:graph`]);
  client = new Client({ apiUrl: served.url, apiKey: null });
}, 120_000);

afterAll(async () => {
  await served?.stop();
  await dropSchema(pool, schema);
  await pool.end();
});

describe("a thread's own ttl and the TTL sweep", () => {
  it("a thread created with ttl is swept after that many minutes idle while one without stays", async () => {
    const short = await client.threads.create({ ttl: 1, metadata: { case: "short" } });
    const plain = await client.threads.create({ metadata: { case: "plain" } });
    const long = await client.threads.create({ ttl: 30 * 24 * 60, metadata: { case: "long" } });
    for (const t of [short, plain, long]) await turn(t.thread_id);
    // Created with a ttl and never run: no checkpoints, only its Agent Server row.
    const empty = await client.threads.create({ ttl: 1, metadata: { case: "empty" } });

    expect(ttlOf(await client.threads.get(short.thread_id))).toEqual({
      strategy: "delete",
      ttl: 1,
    });
    expect(ttlOf(await client.threads.get(plain.thread_id))).toBeUndefined();
    // The run's end restarted the clock: expires one minute after the thread's last activity.
    const { rows } = await pool.query<{ ok: boolean }>(
      `SELECT expires_at = updated_at + interval '1 minute' AS ok FROM ${q}.agent_threads
       WHERE thread_id = $1`,
      [short.thread_id],
    );
    expect(rows[0]!.ok).toBe(true);
    expect((await stored(short.thread_id)).runs).toBe(1);

    // Two minutes on: the two one-minute threads go, with everything they stored.
    await age("2 minutes");
    const swept = await runCleanup(pool, { schema, ttlMs: 7 * DAY_MS });
    expect(swept).toMatchObject({ threadsDeleted: 2, complete: true });
    expect(swept.checkpointsDeleted).toBeGreaterThan(0);
    expect(await stored(short.thread_id)).toEqual(GONE);
    expect(await stored(empty.thread_id)).toEqual(GONE);
    await expect(client.threads.get(short.thread_id)).rejects.toThrow(/404/);
    await expect(client.threads.get(empty.thread_id)).rejects.toThrow(/404/);
    const kept = await client.threads.getState<{ messages: unknown[] }>(plain.thread_id);
    expect(kept.values.messages).toHaveLength(2);
    expect(await client.threads.count({ metadata: { case: "long" } })).toBe(1);

    // Eight days on, through `threadline cleanup --ttl 7d`: the thread without a ttl follows the
    // service's, the thirty-day one keeps its own.
    await age("8 days");
    const dry = await cli("--ttl", "7d", "--dry-run", "--json");
    expect(dry.stderr).toBe("");
    expect(JSON.parse(dry.stdout)).toMatchObject({ threadsDeleted: 1, dryRun: true });
    const real = await cli("--ttl", "7d", "--json");
    expect(real.code).toBe(0);
    expect(JSON.parse(real.stdout)).toMatchObject({ threadsDeleted: 1, dryRun: false });
    expect(await stored(plain.thread_id)).toEqual(GONE);
    expect((await client.threads.get(long.thread_id)).status).toBe("idle");
    expect((await stored(long.thread_id)).checkpoints).toBeGreaterThan(0);
  }, 120_000);

  it("PATCH sets, moves and clears a thread's ttl, and merges its metadata", async () => {
    const thread = await client.threads.create({ metadata: { a: 1, b: 1 } });
    await turn(thread.thread_id);
    const patched = await client.threads.update(thread.thread_id, {
      metadata: { b: 2, c: 3 },
      ttl: 600,
    });
    // Top-level keys merge (the run added graph_id and assistant_id).
    expect(patched.metadata).toMatchObject({ a: 1, b: 2, c: 3, graph_id: "agent" });
    expect(ttlOf(patched)).toEqual({ strategy: "delete", ttl: 600 });

    // Margins of hours, so the real seconds the test takes never decide an outcome.
    await age("400 minutes");
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY_MS })).threadsDeleted).toBe(0);
    // Patching only the metadata keeps the ttl and restarts its clock.
    const touched = await client.threads.update(thread.thread_id, { metadata: { d: 4 } });
    expect(ttlOf(touched)).toEqual({ strategy: "delete", ttl: 600 });
    expect(touched.metadata).toMatchObject({ a: 1, b: 2, c: 3, d: 4 });
    await age("400 minutes");
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY_MS })).threadsDeleted).toBe(0);

    // Cleared: the thread follows the service's ttl again.
    const cleared = await fetch(`${served.url}/threads/${thread.thread_id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ttl: null }),
    });
    expect(cleared.status).toBe(200);
    expect(((await cleared.json()) as { ttl?: unknown }).ttl).toBeUndefined();
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY_MS })).threadsDeleted).toBe(0);
    expect((await runCleanup(pool, { schema, ttlMs: 60 * 60_000 })).threadsDeleted).toBe(1);
    expect(await stored(thread.thread_id)).toEqual(GONE);
  }, 120_000);

  it("a thread whose run holds it is not swept however old its ttl", async () => {
    const thread = await client.threads.create({ ttl: 1 });
    await turn(thread.thread_id);
    await age("10 minutes");
    // A live run's lease, as a run's claim (RunQueue.claim) leaves it while the graph runs.
    await pool.query(
      `UPDATE ${q}.agent_threads SET status = 'busy', busy_run_id = gen_random_uuid(),
         lease_until = now() + interval '1 minute' WHERE thread_id = $1`,
      [thread.thread_id],
    );
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY_MS })).threadsDeleted).toBe(0);
    expect((await stored(thread.thread_id)).thread).toBe(1);
    // Its process died: the lease ran out and the sweep takes the thread.
    await pool.query(
      `UPDATE ${q}.agent_threads SET lease_until = now() - interval '1 second' WHERE thread_id = $1`,
      [thread.thread_id],
    );
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY_MS })).threadsDeleted).toBe(1);
    expect(await stored(thread.thread_id)).toEqual(GONE);
  });
});

import { randomUUID } from "node:crypto";
import { emptyCheckpoint, uuid6, type Checkpoint } from "@langchain/langgraph-checkpoint";
import { StatementRecorder } from "../../helpers/statements.js";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { installedSchema, testPool } from "../../helpers/db.js";
import { QUEUE_SCAN } from "../../../src/runs/queue.js";
import { functionBody, threadFilterProblems } from "../../helpers/thread-filter.js";
import { aiChat, say, startTestService, testConfig } from "../http/helpers.js";

// Every statement Threadline sends on the hot path, as the server receives it, must be one a
// Citus router planner sends to a single shard when the thread-keyed tables are distributed by
// thread_id: each reference to such a table filtered by `thread_id = $n` on that reference.
// The statements are captured from pg's Client.prototype.query in this process (the real
// driver talking to the real Postgres; nothing is replaced), so a statement built anywhere
// (saver, service, triggers' callers) is seen.

const { admin, schema } = installedSchema("tl_router");
const quoted = `"${schema}"`;

let threadKeyed: Set<string>;
const recorder = new StatementRecorder();

beforeAll(async () => {
  const { rows } = await admin.query<{ table_name: string }>(
    `SELECT c.table_name FROM information_schema.columns c
       JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE c.table_schema = $1 AND c.column_name = 'thread_id' AND t.table_type = 'BASE TABLE'`,
    [schema],
  );
  threadKeyed = new Set(rows.map((r) => r.table_name));
  // The tables the migrations key by thread (a new one joins the check by itself).
  expect([...threadKeyed].sort()).toEqual(
    expect.arrayContaining([
      "agent_runs",
      "agent_threads",
      "checkpoint_blobs",
      "checkpoint_threads",
      "checkpoint_writes",
      "checkpoints",
      "thread_owners",
      "threadline_import_journal",
    ]),
  );
  recorder.install();
});

afterAll(() => {
  recorder.uninstall();
});

function checkpoint(values: Record<string, unknown>, versions: Record<string, number>): Checkpoint {
  const cp = emptyCheckpoint();
  cp.id = uuid6(-1);
  cp.channel_values = values;
  cp.channel_versions = versions;
  return cp;
}

/**
 * The statements that name an object of the schema (tables, functions), each once; the run
 * queue's scans across threads (claim, reaper, retention sweep: marked QUEUE_SCAN, decision H24)
 * are multi-shard by design and run in the background of any service.
 */
function threadStatements(texts: string[]): string[] {
  return [...new Set(texts.filter((t) => t.includes(`${quoted}.`) && !t.startsWith(QUEUE_SCAN)))];
}

function problemsOf(texts: string[]): Array<{ statement: string; problems: string[] }> {
  return texts
    .map((statement) => ({
      statement,
      problems: threadFilterProblems(statement, { schema: quoted, tables: threadKeyed }),
    }))
    .filter((r) => r.problems.length > 0);
}

async function capture(fn: () => Promise<void>): Promise<string[]> {
  return threadStatements(await recorder.record(fn));
}

/** The library hot path: every saver method a LangGraph run calls. */
async function libraryHotPath(saver: PostgresCheckpointer, thread: string): Promise<void> {
  const meta = { source: "loop" as const, step: 0, parents: {} };
  const config = { configurable: { thread_id: thread, checkpoint_ns: "" } };
  const first = checkpoint({ messages: ["a"], topic: "t" }, { messages: 1, topic: 1 });
  const c1 = await saver.put(config, first, meta, { messages: 1, topic: 1 });
  await saver.putWrites(c1, [["messages", "w"]], "task-1");
  // Appended messages: a delta row on its base (the put re-checks the base under the lock).
  const second = checkpoint({ messages: ["a", "b"], topic: "t" }, { messages: 2, topic: 1 });
  const c2 = await saver.put(c1, second, { ...meta, step: 1 }, { messages: 2 });
  // Writes issued while a put is in flight ride with the thread's next put (putWithWrites).
  const third = checkpoint({ messages: ["a", "b", "c"], topic: "t" }, { messages: 3, topic: 1 });
  const put3 = saver.put(c2, third, { ...meta, step: 2 }, { messages: 3 });
  const queued = saver.putWrites(c2, [["topic", "u"]], "task-2");
  const c3 = await put3;
  const fourth = checkpoint(
    { messages: ["a", "b", "c", "d"], topic: "t" },
    { messages: 4, topic: 1 },
  );
  const c4 = await saver.put(c3, fourth, { ...meta, step: 3 }, { messages: 4 });
  await queued;
  expect((await saver.getTuple(config))?.checkpoint.id).toBe(fourth.id);
  expect((await saver.getTuple(c3))?.pendingWrites).toEqual([]);
  expect((await saver.getTuple(c2))?.pendingWrites).toEqual([["task-2", "topic", "u"]]);
  expect((await saver.getTuple(c1))?.checkpoint.id).toBe(first.id);
  // A fresh saver holds no decoded values: the full chain comes back from the database.
  const cold = new PostgresCheckpointer(saver.pool, { schema });
  expect((await cold.getTuple(c4))?.checkpoint.channel_values.messages).toEqual([
    "a",
    "b",
    "c",
    "d",
  ]);
  const listed: string[] = [];
  for await (const t of saver.list(config)) listed.push(t.checkpoint.id);
  for await (const t of saver.list(config, { limit: 1, before: c4, filter: { step: 1 } })) {
    listed.push(t.checkpoint.id);
  }
  expect(listed).toEqual([fourth.id, third.id, second.id, first.id, second.id]);
  // DeltaChannel's read: the ancestors' writes and seed by one recursive statement.
  const history = await saver.getDeltaChannelHistory({ config: c4, channels: ["messages"] });
  expect(history.messages?.seed).toEqual(["a", "b", "c"]);
  await saver.deleteThread(thread);
  expect(await saver.getTuple(config)).toBeUndefined();
}

describe("hot-path statements filter each thread-keyed table by a thread_id parameter", () => {
  let library: string[] = [];

  it("the saver's put, putWrites, getTuple (latest and by id), list and deleteThread", async () => {
    const pool = testPool(4);
    const saver = new PostgresCheckpointer(pool, { schema });
    try {
      library = await capture(() => libraryHotPath(saver, `router-${randomUUID()}`));
    } finally {
      await pool.end();
    }
    // put, putWithWrites, putWrites, getLatest, getById, two lists, delta history, deleteThread.
    expect(library.length).toBeGreaterThanOrEqual(9);
    expect(library.some((t) => t.startsWith("WITH RECURSIVE chain"))).toBe(true);
    expect(library.some((t) => t.includes("written AS"))).toBe(true);
    expect(library.some((t) => t.includes("threadline_delete_thread"))).toBe(true);
    expect(problemsOf(library)).toEqual([]);
  });

  it("a chat turn through the service's saver stack (fallback, metrics, Postgres)", async () => {
    const service = await startTestService(testConfig(schema));
    try {
      const id = `router-chat-${randomUUID()}`;
      const statements = await capture(async () => {
        const chat = aiChat(service.url, id);
        expect(await say(chat, "hello")).toContain("turn 1");
        expect(await say(chat, "again")).toContain("turn 2");
        expect((await fetch(`${service.url}/api/chat/${id}/messages`)).status).toBe(200);
        expect((await fetch(`${service.url}/api/chat/${id}`, { method: "DELETE" })).status).toBe(
          204,
        );
      });
      expect(statements.length).toBeGreaterThan(0);
      expect(problemsOf(statements)).toEqual([]);
    } finally {
      await service.shutdown("test");
    }
  });

  it("the functions and triggers those statements run (lock, delete, activity, owners)", async () => {
    const { rows } = await admin.query<{ name: string; def: string }>(
      `SELECT p.proname AS name, pg_get_functiondef(p.oid) AS def
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = $1 AND p.proname = ANY ($2::text[])`,
      [
        schema,
        [
          "threadline_lock_for_put",
          "threadline_delete_thread",
          "threadline_touch_thread",
          "threadline_forget_thread",
        ],
      ],
    );
    // Each function's own name for the thread: its argument, or the row the trigger fires for.
    const params: Record<string, string> = {
      threadline_lock_for_put: "tid",
      threadline_delete_thread: "tid",
      threadline_touch_thread: String.raw`NEW\.thread_id`,
      threadline_forget_thread: String.raw`OLD\.thread_id`,
    };
    expect(rows.map((r) => r.name).sort()).toEqual(Object.keys(params).sort());
    const problems = rows.flatMap((r) =>
      threadFilterProblems(functionBody(r.def), {
        schema: quoted,
        tables: threadKeyed,
        param: params[r.name]!,
      }).map((p) => `${r.name}: ${p}`),
    );
    expect(problems).toEqual([]);
    // A statement-level trigger on a thread-keyed table would join its transition table (no
    // thread parameter a router can see); every trigger here is per row.
    const { rows: triggers } = await admin.query<{ name: string }>(
      `SELECT t.tgname AS name FROM pg_trigger t
         JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND NOT t.tgisinternal AND (t.tgtype & 1) = 0`,
      [schema],
    );
    expect(triggers).toEqual([]);
  });

  it("the check fails on the statement forms Citus cannot route", () => {
    const opts = { schema: quoted, tables: threadKeyed };
    const load = library.find((t) => t.includes("jsonb_each_text"));
    expect(load).toBeDefined();
    // The load query as it was: lookups joined to the selection instead of the parameter.
    const joined = load!.replace(/x\.thread_id = \$1/, "x.thread_id = w.thread_id");
    expect(joined).not.toBe(load);
    expect(threadFilterProblems(joined, opts)).toEqual([
      expect.stringContaining("checkpoint_blobs x"),
    ]);
    // A filter on another reference's alias, an OR, a nested-only filter, rows from an array.
    const broken = [
      `SELECT 1 FROM ${quoted}.checkpoints c, ${quoted}.checkpoint_blobs b WHERE c.thread_id = $1 AND b.channel = 'x'`,
      `SELECT 1 FROM ${quoted}.checkpoints c WHERE c.thread_id = $1 OR c.checkpoint_ns = $2`,
      `SELECT 1 FROM ${quoted}.checkpoints c WHERE EXISTS (SELECT 1 FROM ${quoted}.checkpoint_writes w WHERE c.thread_id = $1)`,
      `DELETE FROM ${quoted}.thread_owners o USING gone_rows g WHERE o.thread_id = g.thread_id`,
      `INSERT INTO ${quoted}.checkpoint_writes (checkpoint_ns, thread_id) SELECT $1, u.thread_id FROM unnest($2::text[]) AS u(thread_id)`,
      `INSERT INTO ${quoted}.checkpoint_threads (thread_id) VALUES ($1), ($2)`,
    ];
    for (const sql of broken) expect(threadFilterProblems(sql, opts)).not.toEqual([]);
    const fine = [
      `SELECT 1 FROM ${quoted}.checkpoints c, ${quoted}.checkpoint_blobs b WHERE c.thread_id = $1 AND b.thread_id = $1`,
      `INSERT INTO ${quoted}.checkpoint_writes (checkpoint_ns, thread_id) SELECT u.ns, $3 FROM unnest($2::text[]) AS u(ns)`,
      `UPDATE ${quoted}.thread_owners SET key_hash = $2 WHERE thread_id = $1`,
    ];
    for (const sql of fine) expect(threadFilterProblems(sql, opts)).toEqual([]);
  });
});

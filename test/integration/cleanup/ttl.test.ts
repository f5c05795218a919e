import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { emptyCheckpoint, type Checkpoint } from "@langchain/langgraph-checkpoint";
import type { RunnableConfig } from "@langchain/core/runnables";
import { describe, expect, it } from "vitest";
import { runCleanup } from "../../../src/cleanup/index.js";
import { migrate } from "../../../src/db/migrator.js";
import { dropSchema, uniqueSchema } from "../../helpers/db.js";
import { backdate, countRows, seedThreads, useCleanupSchema } from "./fixtures.js";

const { pool, schema, q } = useCleanupSchema("tl_cleanup_ttl");
const DAY = 86_400_000;

const cleanup = async (ttl: string, batch: number) =>
  (
    await pool.query<{ n: number }>(`SELECT ${q}.cleanup_expired_threads($1::interval, $2) AS n`, [
      ttl,
      batch,
    ])
  ).rows[0]!.n;

describe("cleanup_expired_threads", () => {
  it("deletes threads idle longer than the ttl completely and leaves active threads untouched", async () => {
    await seedThreads(pool, schema, { prefix: "a-old-", threads: 5, checkpoints: 4 });
    await seedThreads(pool, schema, {
      prefix: "a-old-",
      threads: 5,
      checkpoints: 2,
      ns: "child:1",
    });
    await seedThreads(pool, schema, { prefix: "a-new-", threads: 3, checkpoints: 4 });
    await backdate(pool, schema, "a-old-", "8 days");
    await backdate(pool, schema, "a-new-", "6 days 23 hours");
    const activeBefore = await countRows(pool, schema, "a-new-");

    expect(await cleanup("7 days", 1000)).toBe(5);

    expect(await countRows(pool, schema, "a-old-")).toEqual({
      threads: 0,
      checkpoints: 0,
      blobs: 0,
      writes: 0,
    });
    expect(await countRows(pool, schema, "a-new-")).toEqual(activeBefore);
    expect(activeBefore).toEqual({ threads: 3, checkpoints: 12, blobs: 15, writes: 24 });
  });

  it("keeps a thread idle exactly the ttl and deletes one idle a microsecond longer, on the database clock", async () => {
    await seedThreads(pool, schema, { prefix: "b-edge-", threads: 2, checkpoints: 1 });
    const client = await pool.connect();
    try {
      // now() is fixed for the transaction, so both rows sit exactly on either side of the cutoff.
      await client.query("BEGIN");
      await client.query(
        `UPDATE ${q}.checkpoint_threads SET last_activity = now() - interval '1 hour' WHERE thread_id = 'b-edge-1'`,
      );
      await client.query(
        `UPDATE ${q}.checkpoint_threads SET last_activity = now() - interval '1 hour' - interval '1 microsecond' WHERE thread_id = 'b-edge-2'`,
      );
      const { rows } = await client.query<{ n: number }>(
        `SELECT ${q}.cleanup_expired_threads(interval '1 hour', 1000) AS n`,
      );
      await client.query("COMMIT");
      expect(rows[0]!.n).toBe(1);
    } finally {
      client.release();
    }
    expect((await countRows(pool, schema, "b-edge-1")).checkpoints).toBe(1);
    expect((await countRows(pool, schema, "b-edge-2")).threads).toBe(0);
  });

  it("uses the contract defaults of 7 days and 1000 threads", async () => {
    await seedThreads(pool, schema, { prefix: "c-def-old", threads: 1, checkpoints: 1 });
    await seedThreads(pool, schema, { prefix: "c-def-new", threads: 1, checkpoints: 1 });
    await backdate(pool, schema, "c-def-old", "7 days 1 second");
    await backdate(pool, schema, "c-def-new", "6 days 23 hours");
    const { rows } = await pool.query<{ n: number }>(`SELECT ${q}.cleanup_expired_threads() AS n`);
    expect(rows[0]!.n).toBe(1);
    expect((await countRows(pool, schema, "c-def-new")).threads).toBe(1);
  });

  it("deletes at most batch_size threads per call, oldest first, so callers repeat until it returns less", async () => {
    await seedThreads(pool, schema, { prefix: "d-batch-", threads: 25, checkpoints: 2 });
    await backdate(pool, schema, "d-batch-", "10 days");
    await pool.query(
      `UPDATE ${q}.checkpoint_threads SET last_activity = now() - interval '20 days' WHERE thread_id IN ('d-batch-3', 'd-batch-7')`,
    );
    expect(await cleanup("7 days", 2)).toBe(2);
    expect((await countRows(pool, schema, "d-batch-3")).threads).toBe(0);
    expect((await countRows(pool, schema, "d-batch-7")).threads).toBe(0);
    expect(await cleanup("7 days", 10)).toBe(10);
    expect(await cleanup("7 days", 10)).toBe(10);
    expect(await cleanup("7 days", 10)).toBe(3);
    expect(await cleanup("7 days", 10)).toBe(0);
  });

  it("rejects a non-positive ttl or batch size with a clear error", async () => {
    for (const ttl of ["0 seconds", "-1 day", "1 month -40 days"]) {
      await expect(cleanup(ttl, 10)).rejects.toMatchObject({
        code: "22023",
        message: expect.stringMatching(/ttl must be a positive interval/),
      });
    }
    await expect(pool.query(`SELECT ${q}.cleanup_expired_threads(NULL, 10)`)).rejects.toMatchObject(
      { code: "22023" },
    );
    for (const batch of [0, -5]) {
      await expect(cleanup("7 days", batch)).rejects.toMatchObject({
        code: "22023",
        message: expect.stringMatching(/batch_size must be at least 1/),
      });
    }
  });

  it("the procedure cleanup_all_expired_threads drains the backlog one committed batch at a time", async () => {
    await seedThreads(pool, schema, { prefix: "e-proc-", threads: 23, checkpoints: 1 });
    await backdate(pool, schema, "e-proc-", "9 days");
    await pool.query(`CALL ${q}.cleanup_all_expired_threads(interval '7 days', 5)`);
    expect(await countRows(pool, schema, "e-proc-")).toEqual({
      threads: 0,
      checkpoints: 0,
      blobs: 0,
      writes: 0,
    });
  });

  it("deletes threads written by the official PostgresSaver with all their blobs and writes", async () => {
    const saver = new PostgresSaver(pool, undefined, { schema });
    let config: RunnableConfig = { configurable: { thread_id: "f-official", checkpoint_ns: "" } };
    for (let i = 1; i <= 3; i++) {
      const checkpoint: Checkpoint = {
        ...emptyCheckpoint(),
        channel_values: { messages: [`m${i}`], notes: { n: i } },
        channel_versions: { messages: i, notes: i },
      };
      config = await saver.put(
        config,
        checkpoint,
        { source: "loop", step: i, parents: {} },
        {
          messages: i,
          notes: i,
        },
      );
      await saver.putWrites(config, [["messages", [`w${i}`]]], `task-${i}`);
    }
    const before = await countRows(pool, schema, "f-official");
    expect(before.checkpoints).toBe(3);
    expect(before.blobs).toBeGreaterThan(0);
    expect(before.writes).toBe(3);
    await backdate(pool, schema, "f-official", "8 days");
    expect(await cleanup("7 days", 1000)).toBe(1);
    expect(await countRows(pool, schema, "f-official")).toEqual({
      threads: 0,
      checkpoints: 0,
      blobs: 0,
      writes: 0,
    });
  });
});

describe("runCleanup", () => {
  it("loops until a batch comes back short and reports threads and checkpoints deleted", async () => {
    await seedThreads(pool, schema, { prefix: "g-run-", threads: 23, checkpoints: 3 });
    await seedThreads(pool, schema, { prefix: "g-keep-", threads: 2, checkpoints: 3 });
    await backdate(pool, schema, "g-run-", "8 days");
    const result = await runCleanup(pool, { schema, ttlMs: 7 * DAY, batchSize: 5 });
    expect(result).toMatchObject({
      threadsDeleted: 23,
      checkpointsDeleted: 69,
      dryRun: false,
      batches: 5,
      complete: true,
    });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect((await countRows(pool, schema, "g-keep-")).threads).toBe(2);
  });

  it("counts without deleting in a dry run", async () => {
    await seedThreads(pool, schema, { prefix: "h-dry-", threads: 4, checkpoints: 3 });
    await backdate(pool, schema, "h-dry-", "8 days");
    const before = await countRows(pool, schema);
    const result = await runCleanup(pool, { schema, ttlMs: 7 * DAY, batchSize: 1, dryRun: true });
    expect(result).toMatchObject({ threadsDeleted: 4, checkpointsDeleted: 12, dryRun: true });
    expect(await countRows(pool, schema)).toEqual(before);
    expect((await runCleanup(pool, { schema, ttlMs: 7 * DAY })).threadsDeleted).toBe(4);
  });

  it("stops starting batches once maxRuntime is up and says the run is incomplete", async () => {
    await seedThreads(pool, schema, { prefix: "i-slow-", threads: 10, checkpoints: 1 });
    await backdate(pool, schema, "i-slow-", "8 days");
    let t = 0;
    const clock = () => (t += 1_000); // every reading is one second later
    const result = await runCleanup(pool, {
      schema,
      ttlMs: 7 * DAY,
      batchSize: 2,
      maxRuntimeMs: 2_500,
      clock,
    });
    expect(result.threadsDeleted).toBeLessThan(10);
    expect(result.threadsDeleted).toBeGreaterThan(0);
    expect(result.complete).toBe(false);
    const rest = await runCleanup(pool, { schema, ttlMs: 7 * DAY, batchSize: 2 });
    expect(result.threadsDeleted + rest.threadsDeleted).toBe(10);
  });

  it("pauses after each batch in proportion to its duration, and an abort cuts the pause short", async () => {
    await seedThreads(pool, schema, { prefix: "j-pause-", threads: 6, checkpoints: 1 });
    await backdate(pool, schema, "j-pause-", "8 days");
    let t = 0;
    const clock = () => (t += 100); // a batch "takes" 100 ms of this clock
    const abort = new AbortController();
    const started = performance.now();
    setTimeout(() => abort.abort(), 150);
    const result = await runCleanup(pool, {
      schema,
      ttlMs: 7 * DAY,
      batchSize: 2,
      pause: 50, // 50 x 100 ms = 5 s after the first batch, unless aborted
      clock,
      signal: abort.signal,
    });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(result).toMatchObject({ threadsDeleted: 2, batches: 1, complete: false });
    await expect(runCleanup(pool, { schema, ttlMs: DAY, pause: -1 })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
  });

  it("rejects bad options as INVALID_INPUT before touching the database", async () => {
    await expect(runCleanup(pool, { schema, ttlMs: 0 })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(runCleanup(pool, { schema, ttlMs: DAY, batchSize: 1.5 })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(runCleanup(pool, { schema: "Bad-Schema", ttlMs: DAY })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
  });

  it("reports SCHEMA_NOT_INSTALLED on a schema without the cleanup functions", async () => {
    await expect(
      runCleanup(pool, { schema: "tl_cleanup_missing_schema", ttlMs: DAY }),
    ).rejects.toMatchObject({
      code: "SCHEMA_NOT_INSTALLED",
    });
  });
});

describe("the TTL path on a large table", () => {
  it("reads checkpoints, blobs and writes through their primary keys, never a sequential scan", async () => {
    const big = uniqueSchema("tl_cleanup_plan");
    await migrate(pool, { schema: big });
    const client = await pool.connect();
    try {
      // 2 000 threads x 50 checkpoints = 100k checkpoints, 90% expired: a batch of 1 000 threads
      // is half the table, where the planner would otherwise prefer a sequential scan.
      await seedThreads(pool, big, { prefix: "old-", threads: 1800, checkpoints: 50, writes: 1 });
      await seedThreads(pool, big, { prefix: "new-", threads: 200, checkpoints: 50, writes: 1 });
      await backdate(pool, big, "old-", "8 days");
      await client.query(
        `ANALYZE "${big}".checkpoints, "${big}".checkpoint_blobs, "${big}".checkpoint_writes, "${big}".checkpoint_threads`,
      );

      const plans: string[] = [];
      client.on("notice", (n) => plans.push(n.message ?? ""));
      await client.query("LOAD 'auto_explain'");
      await client.query("SET auto_explain.log_min_duration = 0");
      await client.query("SET auto_explain.log_nested_statements = on");
      await client.query("SET auto_explain.log_level = 'notice'");
      await client.query("SET client_min_messages = 'notice'");
      const scans = async () => {
        await client.query("SELECT pg_stat_force_next_flush()");
        const { rows } = await client.query<{ relname: string; seq_scan: string }>(
          `SELECT relname, seq_scan FROM pg_stat_user_tables WHERE schemaname = $1`,
          [big],
        );
        return Object.fromEntries(rows.map((r) => [r.relname, Number(r.seq_scan)]));
      };
      const before = await scans();
      const { rows } = await client.query<{ threads_deleted: number; checkpoints_deleted: string }>(
        `SELECT * FROM "${big}".cleanup_expired_threads_detailed(interval '7 days', 1000)`,
      );
      const after = await scans();
      await client.query("SET client_min_messages = 'warning'");

      expect(rows[0]).toEqual({ threads_deleted: 1000, checkpoints_deleted: "50000" });
      const nested = plans.filter((p) => /checkpoint/.test(p));
      expect(
        nested.some((p) =>
          /Index (Only )?Scan .*on checkpoints_pkey|Bitmap Index Scan on checkpoints_pkey/.test(p),
        ),
      ).toBe(true);
      expect(nested.some((p) => /checkpoint_threads_last_activity_idx/.test(p))).toBe(true);
      for (const plan of nested) expect(plan).not.toMatch(/Seq Scan on checkpoint/);
      for (const table of [
        "checkpoints",
        "checkpoint_blobs",
        "checkpoint_writes",
        "checkpoint_threads",
      ]) {
        expect(after[table], table).toBe(before[table]);
      }
    } finally {
      client.release(true);
      await dropSchema(pool, big);
    }
  });
});

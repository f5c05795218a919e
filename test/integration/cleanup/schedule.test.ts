import { setTimeout as sleep } from "node:timers/promises";
import { Registry } from "prom-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  CLEANUP_LOCK_NAME,
  startCleanupSchedule,
  type CleanupSchedule,
} from "../../../src/cleanup/index.js";
import { migrate } from "../../../src/db/migrator.js";
import type { Logger } from "../../../src/logger.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { backdate, countRows, seedThreads } from "./fixtures.js";

const pool = testPool(4);
const schema = uniqueSchema("tl_cleanup_sched");
const q = `"${schema}"`;
const DAY = 86_400_000;
const cleanupConfig = { schedule: "* * * * * *", ttl: 7 * DAY, batchSize: 100, maxRuntime: 60_000 };
const schedules: CleanupSchedule[] = [];

beforeAll(async () => {
  await requirePostgres();
  await migrate(pool, { schema });
});
beforeEach(async () => {
  await pool.query(
    `TRUNCATE ${q}.checkpoints, ${q}.checkpoint_blobs, ${q}.checkpoint_writes, ${q}.checkpoint_threads`,
  );
});
afterAll(async () => {
  await Promise.all(schedules.map((s) => s.stop()));
  await dropSchema(pool, schema);
  await pool.end();
});

function captureLogger() {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at =
    (level: string) =>
    (obj: object, msg = "") =>
      lines.push({ level, msg, obj });
  const logger: Logger = {
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
  };
  return { logger, lines };
}

async function runsOf(registry: Registry, outcome: string): Promise<number> {
  const metric = await registry.getSingleMetric("threadline_cleanup_runs_total")?.get();
  return metric?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error("condition not met in time");
}

const sweepLocksHeld = async () =>
  Number(
    (
      await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${q}.threadline_run_locks WHERE name = $1 AND locked_until > now()`,
        [CLEANUP_LOCK_NAME],
      )
    ).rows[0]!.n,
  );

describe("the cleanup schedule", () => {
  it("fires on a seconds-level schedule, sweeps, records metrics, and stops cleanly", async () => {
    await seedThreads(pool, schema, { prefix: "s-old-", threads: 30, checkpoints: 2 });
    await seedThreads(pool, schema, { prefix: "s-new-", threads: 3, checkpoints: 2 });
    await backdate(pool, schema, "s-old-", "8 days");
    const registry = new Registry();
    const { logger, lines } = captureLogger();
    const schedule = startCleanupSchedule({
      pool,
      schema,
      cleanup: cleanupConfig,
      logger,
      registry,
    });
    schedules.push(schedule);

    await until(async () => (await runsOf(registry, "success")) >= 2);
    expect(await countRows(pool, schema, "s-old-")).toEqual({
      threads: 0,
      checkpoints: 0,
      blobs: 0,
      writes: 0,
    });
    expect((await countRows(pool, schema, "s-new-")).threads).toBe(3);

    const text = await registry.metrics();
    expect(text).toMatch(/threadline_cleanup_threads_deleted_total 30/);
    expect(text).toMatch(/threadline_cleanup_checkpoints_deleted_total\{reason="expired"\} 60/);
    expect(text).toMatch(/threadline_cleanup_duration_seconds_count [1-9]/);
    const lastSuccess = (
      await registry.getSingleMetric("threadline_cleanup_last_success_timestamp_seconds")?.get()
    )?.values[0]?.value;
    expect(lastSuccess).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(
      lines.some(
        (l) =>
          l.msg === "cleanup run done" &&
          (l.obj as { threadsDeleted?: number }).threadsDeleted === 30,
      ),
    ).toBe(true);

    await schedule.stop();
    const runs = (await runsOf(registry, "success")) + (await runsOf(registry, "skipped"));
    await sleep(2_200);
    expect((await runsOf(registry, "success")) + (await runsOf(registry, "skipped"))).toBe(runs);
    expect(schedule.isRunning()).toBe(false);
    expect(await sweepLocksHeld()).toBe(0);
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
    expect(await schedule.runNow()).toEqual({ status: "skipped", reason: "stopped" });
  });

  it("lets only one instance sweep at a time through its row in threadline_run_locks", async () => {
    await seedThreads(pool, schema, { prefix: "l-old-", threads: 5, checkpoints: 1 });
    await backdate(pool, schema, "l-old-", "8 days");
    const registry = new Registry();
    const schedule = startCleanupSchedule({
      pool,
      schema,
      cleanup: { ...cleanupConfig, enabled: false },
      registry,
    });
    schedules.push(schedule);
    expect(schedule.enabled).toBe(false);
    expect(schedule.lastRun()).toBeUndefined();

    // Another instance holds the lock (it would free itself at locked_until).
    await pool.query(
      `INSERT INTO ${q}.threadline_run_locks (name, holder, locked_until) VALUES ($1, 'other', now() + interval '1 hour')
       ON CONFLICT (name) DO UPDATE SET holder = 'other', locked_until = now() + interval '1 hour'`,
      [CLEANUP_LOCK_NAME],
    );
    expect(await schedule.runNow()).toEqual({ status: "skipped", reason: "locked" });
    expect((await countRows(pool, schema, "l-old-")).threads).toBe(5);
    expect(schedule.lastRun()?.outcome).toEqual({ status: "skipped", reason: "locked" });
    // Its holder died: once locked_until passes, the lock is free again.
    await pool.query(
      `UPDATE ${q}.threadline_run_locks SET locked_until = now() - interval '1 second' WHERE name = $1`,
      [CLEANUP_LOCK_NAME],
    );
    const outcome = await schedule.runNow();
    expect(outcome).toMatchObject({ status: "success", result: { threadsDeleted: 5 } });
    // lastRun() (the page's ops panel) reports the run that just ended.
    expect(schedule.lastRun()?.outcome).toBe(outcome);
    expect(Date.now() - schedule.lastRun()!.at.getTime()).toBeLessThan(60_000);
    expect(await sweepLocksHeld()).toBe(0);
    expect(pool.idleCount).toBe(pool.totalCount);
    expect(await runsOf(registry, "skipped")).toBe(1);
    await schedule.stop();
  });

  it("three instances on one schedule sweep once per tick between them", async () => {
    await seedThreads(pool, schema, { prefix: "t-old-", threads: 20, checkpoints: 1 });
    await backdate(pool, schema, "t-old-", "8 days");
    const pools = [testPool(2), testPool(2), testPool(2)];
    const logs = pools.map(() => captureLogger());
    try {
      const instances = pools.map((p, i) =>
        startCleanupSchedule({ pool: p, schema, cleanup: cleanupConfig, logger: logs[i]!.logger }),
      );
      const ticksOf = (msg: string) =>
        logs.flatMap((l) =>
          l.lines.filter((x) => x.msg === msg).map((x) => (x.obj as { tick: string }).tick),
        );
      await until(() => Promise.resolve(ticksOf("cleanup run done").length >= 4), 20_000);
      await Promise.all(instances.map((s) => s.stop()));
      const done = ticksOf("cleanup run done");
      expect(new Set(done).size).toBe(done.length);
      // Every tick some instance saw was swept by exactly one of them.
      const seen = new Set([
        ...done,
        ...ticksOf("cleanup skipped: another instance swept this tick"),
      ]);
      for (const tick of seen) expect(done.filter((t) => t === tick)).toHaveLength(1);
      expect((await countRows(pool, schema, "t-old-")).threads).toBe(0);
      expect(logs.flatMap((l) => l.lines.filter((x) => x.level === "error"))).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it("two instances started together: one sweeps, the other skips, and nothing is deleted twice", async () => {
    await seedThreads(pool, schema, { prefix: "p-old-", threads: 200, checkpoints: 1 });
    await backdate(pool, schema, "p-old-", "8 days");
    const pools = [testPool(2), testPool(2)];
    try {
      const instances = pools.map((p) =>
        startCleanupSchedule({
          pool: p,
          schema,
          cleanup: { ...cleanupConfig, batchSize: 1, enabled: false },
        }),
      );
      const outcomes = await Promise.all(instances.map((s) => s.runNow()));
      await Promise.all(instances.map((s) => s.stop()));
      const deleted = outcomes.map((o) => (o.status === "success" ? o.result.threadsDeleted : 0));
      expect(deleted.reduce((a, b) => a + b, 0)).toBe(200);
      expect(outcomes.map((o) => o.status).sort()).toEqual(["skipped", "success"]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it("stop() lets the running sweep finish its batch, then releases the lock and the connection", async () => {
    await seedThreads(pool, schema, { prefix: "x-old-", threads: 200, checkpoints: 1 });
    await backdate(pool, schema, "x-old-", "8 days");
    const schedule = startCleanupSchedule({
      pool,
      schema,
      cleanup: { ...cleanupConfig, batchSize: 1, enabled: false },
    });
    const running = schedule.runNow();
    await until(async () => (await countRows(pool, schema, "x-old-")).threads < 200);
    expect(schedule.isRunning()).toBe(true);
    await schedule.stop();
    expect(schedule.isRunning()).toBe(false);
    const outcome = await running;
    expect(outcome).toMatchObject({ status: "success", result: { complete: false } });
    expect(await sweepLocksHeld()).toBe(0);
    expect(pool.idleCount).toBe(pool.totalCount);
  });

  it("on a one-connection pool (embedded database) lets other queries in between batches", async () => {
    await seedThreads(pool, schema, { prefix: "o-old-", threads: 100, checkpoints: 1 });
    await backdate(pool, schema, "o-old-", "8 days");
    const single = testPool(1);
    try {
      const schedule = startCleanupSchedule({
        pool: single,
        schema,
        cleanup: { ...cleanupConfig, batchSize: 1, enabled: false, pause: 2 },
      });
      const run = schedule.runNow();
      await until(async () => (await countRows(pool, schema, "o-old-")).threads < 100);
      // This query needs the pool's only connection while the run is still going.
      await single.query("SELECT 1");
      expect(schedule.isRunning()).toBe(true);
      expect(await run).toMatchObject({ status: "success", result: { threadsDeleted: 100 } });
      await schedule.stop();
    } finally {
      await single.end();
    }
  });

  it("refuses an invalid cron expression as CONFIG_INVALID", () => {
    expect(() =>
      startCleanupSchedule({ pool, schema, cleanup: { ...cleanupConfig, schedule: "every hour" } }),
    ).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message: expect.stringMatching(/cleanup.schedule/),
      }),
    );
  });
});

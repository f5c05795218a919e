import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../../src/db/migrator.js";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";
import { backdate, countRows, seedThreads } from "../cleanup/fixtures.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const pool = testPool(2);
const schema = uniqueSchema("tl_cleanup_cli");

beforeAll(async () => {
  await requirePostgres();
  await migrate(pool, { schema });
});
afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `threadline cleanup ...` from the sources, as an operator's cron job would. */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "cleanup", ...args],
      {
        cwd: root,
        env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL, THREADLINE_LOG_LEVEL: "warn" },
        timeout: 170_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("threadline cleanup", () => {
  it("--dry-run --json reports what would be deleted and deletes nothing", async () => {
    await seedThreads(pool, schema, { prefix: "cli-old-", threads: 4, checkpoints: 3 });
    await seedThreads(pool, schema, { prefix: "cli-new-", threads: 2, checkpoints: 3 });
    await backdate(pool, schema, "cli-old-", "8 days");
    const before = await countRows(pool, schema);

    const dry = await cli("--schema", schema, "--ttl", "7d", "--dry-run", "--json");
    expect(dry.stderr).toBe("");
    expect(dry.code).toBe(0);
    const report = JSON.parse(dry.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ threadsDeleted: 4, checkpointsDeleted: 12, dryRun: true });
    expect(typeof report.durationMs).toBe("number");
    expect(dry.stdout.trim().split("\n")).toHaveLength(1);
    expect(await countRows(pool, schema)).toEqual(before);

    const real = await cli("--schema", schema, "--ttl", "7d", "--batch-size", "3", "--json");
    expect(real.code).toBe(0);
    expect(JSON.parse(real.stdout)).toMatchObject({
      threadsDeleted: 4,
      checkpointsDeleted: 12,
      dryRun: false,
    });
    expect(await countRows(pool, schema, "cli-old-")).toEqual({
      threads: 0,
      checkpoints: 0,
      blobs: 0,
      writes: 0,
    });
    expect((await countRows(pool, schema, "cli-new-")).threads).toBe(2);
  });

  it("exits 2 with a clear message for a bad --ttl, --batch-size or --pause, before touching the database", async () => {
    const bad = [
      ["--ttl", "7x"],
      ["--ttl", "-1d"],
      ["--ttl=-1d"],
      ["--ttl", "0s"],
      ["--batch-size", "0"],
      ["--batch-size", "ten"],
      ["--pause", "-1"],
    ];
    const runs = await Promise.all(bad.map((args) => cli("--schema", schema, ...args, "--json")));
    runs.forEach((run, i) => {
      const flag = /^--[a-z-]+/.exec(bad[i]![0]!)![0];
      expect(run.code, bad[i]!.join(" ")).toBe(2);
      expect(JSON.parse(run.stdout)).toEqual({
        error: {
          code: "USAGE_ERROR",
          message: expect.stringContaining(`${flag} must be`) as string,
        },
      });
      expect(run.stderr).toContain(`${flag} must be`);
    });
    // Seven CLI processes at once: a minute or more on a loaded machine.
  }, 180_000);

  it("exits 1 and says to run migrate when the schema is not installed", async () => {
    const run = await cli("--schema", "tl_cleanup_cli_nowhere", "--json");
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: "SCHEMA_NOT_INSTALLED" } });
    expect(run.stderr).toMatch(/SCHEMA_NOT_INSTALLED.*threadline migrate/);
  });
});

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadMigrations } from "../../../src/db/migrator.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { pgbouncerUrl } from "../../helpers/pgbouncer.js";

// Regression: with a session advisory lock, `threadline migrate` through PgBouncer in transaction
// mode hung in 5 of 8 concurrent runs (the lock and its unlock landed on different server
// connections). The migrator now holds a transaction-level lock for its one transaction.
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const admin = testPool(1);
const schema = uniqueSchema("tl_mig_bouncer");
const appName = `tl_mig_bouncer_${process.pid}`;
beforeAll(requirePostgres);
afterAll(async () => {
  await dropSchema(admin, schema);
  await admin.end();
});

function migrateCli(url: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "migrate", "--json", "--schema", schema],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          DATABASE_URL: url,
          THREADLINE_DATABASE_APPLICATION_NAME: appName,
          THREADLINE_LOG_LEVEL: "silent",
        },
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("threadline migrate through PgBouncer (transaction mode)", () => {
  it("8 concurrent runs on an empty schema all finish and exactly one applies the migrations", async () => {
    const url = pgbouncerUrl();
    const runs = await Promise.all(Array.from({ length: 8 }, () => migrateCli(url)));
    for (const run of runs) expect(run, run.stderr).toMatchObject({ code: 0 });
    const applied = runs.map(
      (r) => (JSON.parse(r.stdout) as { applied: unknown[] }).applied.length,
    );
    const count = loadMigrations().length;
    expect(applied.filter((n) => n === count)).toHaveLength(1);
    expect(applied.filter((n) => n === 0)).toHaveLength(7);
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM "${schema}".threadline_migrations`,
    );
    expect(rows[0].n).toBe(count);
    // Nothing is left holding or waiting for a lock (a session lock would have stayed).
    const { rows: locks } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)
       WHERE l.locktype = 'advisory' AND a.application_name = $1`,
      [appName],
    );
    expect(locks[0].n).toBe(0);
  }, 600_000); // eight CLI processes start at once on a small, shared machine
});

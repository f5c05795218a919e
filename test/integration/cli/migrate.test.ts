import { redactUrl } from "../../../src/db/database.js";
import { spawnSync } from "node:child_process";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";

const pool = testPool(1);
const schema = uniqueSchema("tl_cli_migrate");
beforeAll(requirePostgres);
afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

function cli(...args: string[]) {
  const res = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL, THREADLINE_LOG_LEVEL: "silent" },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe("threadline migrate", () => {
  it("--dry-run prints the SQL and changes nothing", async () => {
    const res = cli("migrate", "--dry-run", "--schema", schema);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`CREATE TABLE IF NOT EXISTS "${schema}".checkpoints`);
    const { rows } = await pool.query("SELECT to_regnamespace($1) AS n", [schema]);
    expect(rows[0].n).toBeNull();
  });

  it("applies every migration once; a second run is a no-op (--json)", () => {
    const first = cli("migrate", "--json", "--schema", schema);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).applied.length).toBeGreaterThanOrEqual(6);
    const second = cli("migrate", "--json", "--schema", schema);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({
      database: redactUrl(TEST_DATABASE_URL),
      schema,
      dryRun: false,
      applied: [],
    });
  });

  it.each([`bad"name`, "Robert'); DROP TABLE x;--", "UPPER"])(
    "refuses the schema name %j with exit code 2 and a clear message",
    (bad) => {
      const res = cli("migrate", "--schema", bad);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/schema name must match/);
    },
  );

  it("--distribute on PostgreSQL without Citus: CITUS_NOT_INSTALLED on one line, exit 2, schema migrated", async () => {
    const res = cli("migrate", "--distribute", "--json", "--schema", schema);
    expect(res.code).toBe(2);
    expect(JSON.parse(res.stdout)).toEqual({
      error: { code: "CITUS_NOT_INSTALLED", message: expect.stringMatching(/no citus extension/) },
    });
    expect(res.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^threadline: .*no citus extension: --distribute needs a Citus/),
    ]);
    // The migrations ran before the distribution was refused; the SQL function refuses too.
    const { rows } = await pool.query<{ n: string | null }>("SELECT to_regprocedure($1) AS n", [
      `"${schema}".threadline_distribute(integer)`,
    ]);
    expect(rows[0]!.n).not.toBeNull();
    await expect(
      pool.query(`SELECT * FROM "${schema}".threadline_distribute()`),
    ).rejects.toMatchObject({
      code: "0A000",
      message: expect.stringMatching(/citus extension is not installed/),
    });
    expect(cli("migrate", "--shard-count", "4", "--schema", schema).code).toBe(2);
  });

  it("exits 2 on an unknown flag", () => {
    expect(cli("migrate", "--no-such-flag").code).toBe(2);
  });

  it("exits 1 when the database cannot be reached", () => {
    const res = cli("migrate", "--database-url", "postgres://postgres@127.0.0.1:1/none");
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/DB_UNAVAILABLE/);
  });
});

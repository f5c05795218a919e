import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { redactUrl } from "../../../src/db/database.js";
import { migrate } from "../../../src/db/migrator.js";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";
import { runCli, textLines, type CliRun } from "./helpers.js";

/**
 * Expected failures of the CLI: one line on stderr that says what is wrong and how to fix it,
 * never a stack trace, and the contract's exit code (2 usage/config, 1 operational); with --json
 * also one error object on stdout.
 */

// Each test spawns the CLI through tsx: seconds alone, a minute on a loaded machine.
vi.setConfig({ testTimeout: 180_000 });

const pool = testPool(1);
const schema = uniqueSchema("tl_cli_errors");
/** Migrated by one test through the CLI, to see what it prints. */
const fresh = uniqueSchema("tl_cli_output");
const dir = mkdtempSync(join(tmpdir(), "tl-cli-errors-"));
/** Where the embedded database would go: it must never be created by a refused command. */
const dataDir = join(dir, "data");
const listeners: Server[] = [];

beforeAll(async () => {
  await requirePostgres();
  await migrate(pool, { schema });
});
afterAll(async () => {
  for (const server of listeners) server.close();
  await dropSchema(pool, schema);
  await dropSchema(pool, fresh);
  await pool.end();
  rmSync(dir, { recursive: true, force: true });
});

/** A local TCP port that accepts connections and never answers (a wedged server). */
async function silentPort(): Promise<number> {
  const server = createServer(() => undefined).listen(0, "127.0.0.1");
  listeners.push(server);
  await once(server, "listening");
  return (server.address() as { port: number }).port;
}

/** A closed port: something listened there a moment ago. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

function expectOneLine(run: CliRun, code: number, pattern: RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  const lines = textLines(run.stderr);
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(run.stderr).not.toMatch(/^\s+at /m);
}

const env = { THREADLINE_DATABASE_EMBEDDED_DATA_DIR: dataDir, THREADLINE_LOG_LEVEL: "warn" };
const withDb = { ...env, DATABASE_URL: TEST_DATABASE_URL, THREADLINE_DATABASE_SCHEMA: schema };

describe("threadline import-redis against a Redis it cannot use", () => {
  it("a refused connection is REDIS_UNAVAILABLE, exit 1, one line saying refused", async () => {
    const port = await closedPort();
    const run = await runCli(
      ["import-redis", "--redis-url", `redis://127.0.0.1:${port}/0`],
      withDb,
    );
    expectOneLine(
      run,
      1,
      /^threadline: REDIS_UNAVAILABLE: cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+\/0: connection refused .*--redis-url/,
    );
  });

  it("a server that never answers is REDIS_UNAVAILABLE after --connect-timeout, saying timeout", async () => {
    const port = await silentPort();
    const run = await runCli(
      [
        "import-redis",
        "--redis-url",
        `redis://127.0.0.1:${port}/0`,
        "--connect-timeout",
        "1s",
        "--json",
      ],
      withDb,
    );
    expectOneLine(run, 1, /REDIS_UNAVAILABLE: .*no answer within 1s \(timeout\)/);
    expect(JSON.parse(run.stdout)).toEqual({
      error: { code: "REDIS_UNAVAILABLE", message: expect.stringMatching(/timeout/) as string },
    });
  });

  it("--redis-url that is not redis:// or rediss:// is a usage error (exit 2)", async () => {
    const run = await runCli(
      ["import-redis", "--redis-url", "http://user:hunter2@localhost:6379"],
      withDb,
    );
    expectOneLine(run, 2, /^threadline: --redis-url must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(run.stderr).not.toContain("hunter2");
  });

  it("--help shows --redis-url as required", async () => {
    const run = await runCli(["import-redis", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: threadline import-redis --redis-url <url> \[options\]/);
    expect(run.stdout).toMatch(/--redis-url <url>\s+\(required\)/);
  });

  it("a missing --redis-url is exit 2 with the hint, and a JSON error with --json", async () => {
    const run = await runCli(["import-redis", "--json"], withDb);
    expect(run.code).toBe(2);
    expect(textLines(run.stderr)).toEqual([
      "error: required option '--redis-url <url>' not specified",
      "(run with --help for the usage)",
    ]);
    expect(JSON.parse(run.stdout)).toEqual({
      error: {
        code: "USAGE_ERROR",
        message: "required option '--redis-url <url>' not specified",
      },
    });
  });
});

describe("a database URL that does not parse", () => {
  it.each([
    ["cleanup", "notaurl"],
    ["migrate", "http://user:hunter2@db.example/threadline"],
    ["cleanup", "localhost:5432/db"],
  ])(
    "%s --database-url %s is a configuration error (exit 2), not DB_UNAVAILABLE",
    async (cmd, url) => {
      const run = await runCli([cmd, "--database-url", url], env);
      expectOneLine(
        run,
        2,
        /^threadline: invalid configuration: database\.url .* is not a PostgreSQL connection string.*use postgres:\/\/user:password@host:5432\/database$/,
      );
      expect(run.stderr).not.toMatch(/DB_UNAVAILABLE|ENOTFOUND|hunter2/);
    },
  );

  it("--json prints the error object on stdout", async () => {
    const run = await runCli(["cleanup", "--database-url", "notaurl", "--json"], env);
    expect(run.code).toBe(2);
    const out = JSON.parse(run.stdout) as { error: { code: string; message: string } };
    expect(out.error.code).toBe("CONFIG_INVALID");
    expect(out.error.message).toMatch(/not a PostgreSQL connection string/);
  });

  it("DATABASE_URL=notaurl stops serve with exit 2 too", async () => {
    const run = await runCli(["serve", "--port", "0"], { ...env, DATABASE_URL: "notaurl" });
    expectOneLine(run, 2, /database\.url \(DATABASE_URL.* is not a PostgreSQL connection string/);
  });
});

describe("threadline serve on a port in use", () => {
  it("exits 1 with one PORT_IN_USE line naming the address and the fix", async () => {
    const port = await silentPort();
    const run = await runCli(["serve", "--port", String(port), "--host", "127.0.0.1"], withDb);
    expectOneLine(
      run,
      1,
      new RegExp(
        `^threadline: PORT_IN_USE: 127\\.0\\.0\\.1:${port} is already in use .*--port or PORT$`,
      ),
    );
  });
});

describe("ops commands and the embedded database", () => {
  it.each([
    ["migrate", "--dry-run"],
    ["cleanup", "--dry-run"],
    ["import-redis", "--redis-url", "redis://127.0.0.1:6379/0", "--dry-run"],
  ])(
    "%s without DATABASE_URL refuses (exit 2) and names the fix, touching no database",
    async (...args) => {
      const run = await runCli(args, env);
      expectOneLine(
        run,
        2,
        /^threadline: no database given: set DATABASE_URL or pass --database-url postgres:\/\/.*pass --embedded/,
      );
      expect(run.stderr).toContain(dataDir);
      expect(existsSync(dataDir)).toBe(false);
    },
  );

  it("--embedded and --database-url together are a usage error", async () => {
    const run = await runCli(["migrate", "--embedded", "--database-url", TEST_DATABASE_URL], env);
    expectOneLine(run, 2, /--embedded and --database-url exclude each other/);
  });

  it("--embedded acts on the embedded database and says so, even with DATABASE_URL set", async () => {
    const run = await runCli(["migrate", "--embedded", "--dry-run"], {
      ...withDb,
      THREADLINE_LOG_LEVEL: "error",
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split("\n")[0]).toBe(`-- embedded PGlite in ${dataDir}: schema ${schema}`);
    expect(run.stdout).toContain(`CREATE TABLE IF NOT EXISTS "${schema}".checkpoints`);
    expect(existsSync(dataDir)).toBe(true);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
    // The first start creates the cluster: seconds, minutes on a loaded machine.
  }, 300_000);
});

describe("output: text for people, JSON with --json", () => {
  it("names the database (password redacted) and logs plain text lines, no JSON", async () => {
    // A password to redact: the test server trusts local connections, so any password works.
    const u = new URL(TEST_DATABASE_URL);
    if (!u.password) u.password = "s3cret";
    const url = u.toString();
    const run = await runCli(["migrate", "--database-url", url, "--schema", fresh], {
      ...withDb,
      THREADLINE_LOG_LEVEL: "info",
    });
    expect(run.code, run.stderr).toBe(0);
    const shown = redactUrl(url);
    expect(shown).toContain(":***@");
    expect(run.stdout.startsWith(`${shown}: applied 1_checkpoint_tables, `)).toBe(true);
    expect(run.stdout + run.stderr).not.toContain(u.password);
    expect(run.stderr).toContain(`threadline: using PostgreSQL (database=${shown})`);
    for (const line of run.stderr.trim().split("\n")) expect(line).toMatch(/^threadline: /);
  });

  it("--json prints one JSON object on stdout and pino JSON lines on stderr", async () => {
    const run = await runCli(["cleanup", "--dry-run", "--json"], {
      ...withDb,
      THREADLINE_LOG_LEVEL: "info",
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim().split("\n")).toHaveLength(1);
    expect(JSON.parse(run.stdout)).toMatchObject({
      database: redactUrl(TEST_DATABASE_URL),
      schema,
      dryRun: true,
      threadsDeleted: 0,
    });
    const logs = run.stderr.trim().split("\n");
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expect(JSON.parse(line)).toHaveProperty("level");
  });

  it("an unknown flag with --json is exit 2 with a USAGE_ERROR object on stdout", async () => {
    const run = await runCli(["cleanup", "--no-such-flag", "--json"], withDb);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toEqual({
      error: { code: "USAGE_ERROR", message: "unknown option '--no-such-flag'" },
    });
  });
});

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";

// Vitest global setup: a PgBouncer of the test run's own, in transaction mode, in front of the
// test database. Tests reach it through `inject("pgbouncerUrl")` (see test/helpers/pgbouncer.ts).
//
// - TEST_PGBOUNCER_URL set: that pooler is used as is (it must be in transaction mode).
// - Otherwise a `pgbouncer` binary (Debian package `pgbouncer`; `.ci/run` installs it) is started
//   on a free port with a config file generated under a temp dir (no unix socket, no pid file,
//   so it never collides with a system pgbouncer or another worktree's run), and stopped after.
// - Neither possible: the pooler tests fail with `pgbouncerError`, which says how to fix it.

declare module "vitest" {
  export interface ProvidedContext {
    pgbouncerUrl: string;
    pgbouncerError: string;
  }
}

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function answers(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

let child: ChildProcess | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  project.provide("pgbouncerError", "");
  const given = process.env.TEST_PGBOUNCER_URL;
  if (given) {
    const problem = await answers(given);
    project.provide("pgbouncerUrl", given);
    if (problem) {
      project.provide(
        "pgbouncerError",
        `PgBouncer is required at TEST_PGBOUNCER_URL=${given} (${problem}); unset TEST_PGBOUNCER_URL to let the tests start their own (needs the pgbouncer binary: apt-get install pgbouncer)`,
      );
    }
    return;
  }
  const found = spawnSync("pgbouncer", ["--version"], { encoding: "utf8" });
  if (found.error || found.status !== 0) {
    project.provide("pgbouncerUrl", "");
    project.provide(
      "pgbouncerError",
      "PgBouncer is required for the pooler tests: install it (apt-get install pgbouncer; bash .ci/run does) or point TEST_PGBOUNCER_URL at a PgBouncer in transaction mode in front of the test database",
    );
    return;
  }
  const target = new URL(DATABASE_URL);
  const user = decodeURIComponent(target.username || "postgres");
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), "threadline-pgbouncer-"));
  chmodSync(dir, 0o755);
  const ini = join(dir, "pgbouncer.ini");
  const users = join(dir, "userlist.txt");
  writeFileSync(users, `"${user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=${target.hostname} port=${target.port || "5432"}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${users}`,
      "pool_mode = transaction",
      "max_client_conn = 1000",
      // Server connections per database/user pair: a share of the default max_connections 100.
      "default_pool_size = 12",
      // Idle server connections close soon, so the pooler does not hold Postgres sessions that
      // the test files running beside it need.
      "server_idle_timeout = 5",
      // pg sends statement_timeout as a startup parameter, which PgBouncer 1.18 would refuse.
      "ignore_startup_parameters = extra_float_digits, statement_timeout, options",
      "log_connections = 0",
      "log_disconnections = 0",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  // PgBouncer refuses to run as root; -u drops to the postgres user.
  const args = process.getuid?.() === 0 ? ["-u", "postgres", ini] : [ini];
  let stderr = "";
  child = spawn("pgbouncer", args, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString("utf8")).slice(-4000);
  });
  const url = `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}${target.pathname}`;
  project.provide("pgbouncerUrl", url);
  const deadline = Date.now() + 15_000;
  let problem = await answers(url);
  while (problem && Date.now() < deadline && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 100));
    problem = await answers(url);
  }
  if (problem) {
    project.provide(
      "pgbouncerError",
      `the tests' PgBouncer (${ini}) did not answer at ${url}: ${problem}\n${stderr}`,
    );
  }
}

export async function teardown(): Promise<void> {
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await Promise.race([once(child, "exit"), new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}

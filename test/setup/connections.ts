import pg from "pg";

/**
 * Global setup: samples how many sessions the run holds on the test server. Two test files run
 * at once against a server with the default max_connections of 100, so each file keeps to a
 * budget (about 40 sessions, pooler included); the teardown prints the peak and, on CI (where
 * the server is the run's own), fails the run when it came close enough to the limit that "too
 * many clients" would be a matter of timing. Elsewhere other work may share the server: a warning.
 */

const URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SAMPLE_MS = 100;
/** Share of the usable sessions above which the run fails. */
const LIMIT_SHARE = 0.9;

let client: pg.Client | undefined;
let timer: NodeJS.Timeout | undefined;
let peak = 0;
let usable = 0;

export async function setup(): Promise<void> {
  const c = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 3000 });
  c.on("error", () => undefined);
  try {
    await c.connect();
  } catch {
    // The tests report a missing server themselves (requirePostgres).
    return;
  }
  client = c;
  const { rows } = await c.query<{ usable: number }>(
    `SELECT current_setting('max_connections')::int
            - current_setting('superuser_reserved_connections')::int AS usable`,
  );
  usable = rows[0]!.usable;
  let busy = false;
  timer = setInterval(() => {
    if (busy) return;
    busy = true;
    c.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'",
    )
      .then(({ rows: r }) => {
        peak = Math.max(peak, r[0]!.n);
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, SAMPLE_MS);
  timer.unref();
}

export async function teardown(): Promise<void> {
  if (timer) clearInterval(timer);
  await client?.end().catch(() => undefined);
  if (!client) return;
  console.log(`Postgres sessions: peak ${peak} of ${usable} usable`);
  if (peak <= usable * LIMIT_SHARE) return;
  const message = `the server held ${peak} of ${usable} usable Postgres sessions during the run: a test file opens too many (keep each under about 40: smaller pools, fewer instances)`;
  if (process.env.CI !== "true") {
    console.warn(`warning: ${message}, or other work shares the server`);
    return;
  }
  process.exitCode = 1;
  throw new Error(message);
}

import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { attachPoolErrorHandler } from "../../src/db/pool.js";

/** The Postgres the tests run against (the machine's local server by default). */
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** The Redis the tests run against. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A pool on the test database, with the error handler every pool needs. */
export function testPool(max = 4): pg.Pool {
  return attachPoolErrorHandler(new pg.Pool({ connectionString: TEST_DATABASE_URL, max }));
}

/** A unique, valid schema name for one test file or test. */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`.toLowerCase();
}

/** Drops a schema and everything in it. */
export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema.replace(/"/g, '""')}" CASCADE`);
}

/**
 * Fails (or, outside CI, explains) when a required service is down: on CI a missing service is a
 * failure, never a skip.
 */
export async function requirePostgres(): Promise<void> {
  const client = new pg.Client({
    connectionString: TEST_DATABASE_URL,
    connectionTimeoutMillis: 3000,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (err) {
    throw new Error(
      `PostgreSQL is required at ${TEST_DATABASE_URL} (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start): ${(err as Error).message}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A schema with Threadline's tables for one test file: installed before its tests, dropped after.
 * `admin` is a small pool on the test database for the file's own queries.
 */
export function installedSchema(prefix: string): { admin: pg.Pool; schema: string } {
  const admin = testPool(2);
  const schema = uniqueSchema(prefix);
  beforeAll(async () => {
    await requirePostgres();
    // Imported here so that helpers without a schema do not load the checkpointer.
    const { PostgresCheckpointer } = await import("../../src/checkpoint/postgres/saver.js");
    await new PostgresCheckpointer(admin, { schema }).setup();
  });
  afterAll(async () => {
    await dropSchema(admin, schema);
    await admin.end();
  });
  return { admin, schema };
}

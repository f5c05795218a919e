import pg from "pg";
import { attachPoolErrorHandler } from "../../src/db/pool.js";
import { distributeSchema } from "../../src/db/citus.js";
import { PostgresCheckpointer } from "../../src/checkpoint/postgres/saver.js";
import { uniqueSchema } from "../helpers/db.js";

/**
 * The Citus coordinator of `npm run test:citus`. Required: this suite only runs when asked for,
 * so a missing URL is a failure with the fix, never a skip.
 */
export function citusUrl(): string {
  const url = process.env.CITUS_URL;
  if (!url) {
    throw new Error(
      'CITUS_URL is required for npm run test:citus (a Citus coordinator, e.g. postgres://postgres@127.0.0.1:9700/threadline; README "Running on Citus")',
    );
  }
  return url;
}

/** A pool on the coordinator. */
export function citusPool(max = 8): pg.Pool {
  return attachPoolErrorHandler(new pg.Pool({ connectionString: citusUrl(), max }));
}

/** Fails unless the coordinator has Citus with at least one worker. */
export async function requireCitus(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ workers: number }>(
    "SELECT count(*)::int AS workers FROM citus_get_active_worker_nodes()",
  );
  if ((rows[0]?.workers ?? 0) < 1) throw new Error(`no active Citus worker behind ${citusUrl()}`);
}

/** Installs Threadline in a fresh schema and distributes it (4 shards per table, co-located). */
export async function distributedSchema(pool: pg.Pool, prefix: string): Promise<string> {
  const schema = uniqueSchema(prefix);
  await new PostgresCheckpointer(pool, { schema }).setup();
  const tables = await distributeSchema(pool, { schema, shardCount: 4 });
  if (!tables.every((t) => t.distributedNow)) throw new Error(`${schema} was distributed already`);
  return schema;
}

/** Drops a schema on every node (Citus propagates DROP SCHEMA). */
export async function dropCitusSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

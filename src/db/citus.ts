import type pg from "pg";
import { ThreadlineError } from "../errors.js";
import { quoteSchema } from "./identifier.js";
import { toThreadlineError } from "./errors.js";

/** One thread-keyed table and whether this call distributed it (false: it already was). */
export interface DistributedTable {
  table: string;
  distributedNow: boolean;
}

/**
 * Distributes an installed schema with Citus: every thread-keyed table by `thread_id`,
 * co-located with `checkpoints` (`<schema>.threadline_distribute`, migration 0014). Idempotent.
 * Run it on the coordinator after the migrations. `shardCount` applies to the first
 * distribution only (default: Citus' `citus.shard_count`, 32).
 *
 * @throws ThreadlineError `CITUS_NOT_INSTALLED` when the database has no `citus` extension.
 */
export async function distributeSchema(
  pool: pg.Pool,
  options: { schema: string; shardCount?: number; database?: string },
): Promise<DistributedTable[]> {
  const s = quoteSchema(options.schema);
  try {
    const { rows: ext } = await pool.query<{ found: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') AS found",
    );
    if (!ext[0]?.found) {
      throw new ThreadlineError(
        "CITUS_NOT_INSTALLED",
        `${options.database ?? "the database"} has no citus extension: --distribute needs a Citus coordinator (CREATE EXTENSION citus, or Azure Cosmos DB for PostgreSQL); plain PostgreSQL needs no distribution`,
      );
    }
    const { rows } = await pool.query<{ table_name: string; distributed_now: boolean }>(
      `SELECT table_name, distributed_now FROM ${s}.threadline_distribute($1::integer)`,
      [options.shardCount ?? null],
    );
    return rows.map((r) => ({ table: r.table_name, distributedNow: r.distributed_now }));
  } catch (err) {
    throw toThreadlineError(err, "distribute");
  }
}

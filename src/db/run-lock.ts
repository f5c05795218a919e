import type pg from "pg";
import { quoteSchema } from "./identifier.js";

/** Anything that runs a parameterized query (a pool or a client). */
interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** What {@link claimRunLock} found. */
export type RunLockClaim =
  /** This holder has the lock until it releases it or `ttlMs` passes. */
  | "claimed"
  /** Another holder has it now. */
  | "locked"
  /** The tick was already claimed (and run) by some holder. */
  | "taken";

/** Options of {@link claimRunLock}. */
export interface RunLockOptions {
  schema: string;
  /** Lock name, e.g. `cleanup`. */
  name: string;
  /** Who claims: unique per process and run owner. */
  holder: string;
  /** The lock frees itself after this many ms if its holder never releases it (it died). */
  ttlMs: number;
  /**
   * The scheduled slot this run is for (a cron tick). At most one claim per tick succeeds across
   * all holders; ticks must increase. Omitted: only the lock itself is checked (manual runs).
   */
  tick?: Date;
}

/**
 * Claims the row lock `name` in `<schema>.threadline_run_locks` (migration 0008) in one
 * autocommit statement: no session state, so it works through a transaction-mode pooler. The
 * claim succeeds when the lock is free (released, expired, or never taken) and, with `tick`,
 * when no claim of that tick or a later one succeeded before. Concurrent claims queue on the
 * row and see each other's result, so exactly one wins.
 */
export async function claimRunLock(db: Queryable, options: RunLockOptions): Promise<RunLockClaim> {
  const s = quoteSchema(options.schema);
  const tick = options.tick?.toISOString() ?? null;
  const { rows } = await db.query<{ holder: string }>(
    `INSERT INTO ${s}.threadline_run_locks AS l (name, holder, locked_until, last_tick)
VALUES ($1, $2, now() + $3 * interval '1 millisecond', $4::timestamptz)
ON CONFLICT (name) DO UPDATE
  SET holder = EXCLUDED.holder, locked_until = EXCLUDED.locked_until,
      last_tick = coalesce(EXCLUDED.last_tick, l.last_tick)
  WHERE l.locked_until <= now()
    AND ($4::timestamptz IS NULL OR l.last_tick IS NULL OR l.last_tick < $4::timestamptz)
RETURNING holder`,
    [options.name, options.holder, options.ttlMs, tick],
  );
  if (rows.length > 0) return "claimed";
  const state = await db.query<{ free: boolean }>(
    `SELECT locked_until <= now() AS free FROM ${s}.threadline_run_locks WHERE name = $1`,
    [options.name],
  );
  return state.rows[0]?.free === true ? "taken" : "locked";
}

/** Releases the lock if `holder` still has it (keeps the tick it claimed). */
export async function releaseRunLock(
  db: Queryable,
  options: Pick<RunLockOptions, "schema" | "name" | "holder">,
): Promise<void> {
  const s = quoteSchema(options.schema);
  await db.query(
    `UPDATE ${s}.threadline_run_locks SET locked_until = now() WHERE name = $1 AND holder = $2`,
    [options.name, options.holder],
  );
}

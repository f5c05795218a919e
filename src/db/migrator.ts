import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type pg from "pg";
import { ThreadlineError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";
import { packageRoot } from "../paths.js";
import { toThreadlineError } from "./errors.js";
import { quoteSchema } from "./identifier.js";
import { connectGuarded, type GuardedClient } from "./pool.js";

/** One numbered, immutable SQL file of `sql/migrations/`. */
export interface Migration {
  version: number;
  name: string;
  /** SQL with the `:SCHEMA` placeholder. */
  sql: string;
  /** sha256 of the file as shipped; an applied file must never change. */
  checksum: string;
}

export interface MigrationResult {
  schema: string;
  applied: Array<Pick<Migration, "version" | "name">>;
  /** Versions already present before this run. */
  alreadyApplied: number;
}

const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;
/** Advisory-lock namespace for the migrator (first int of the two-int lock key). */
const LOCK_CLASS = 0x74_6c_6d_67; // "tlmg"

let cached: Migration[] | undefined;

/**
 * Reads the migration files once, in version order. The version is the file's number: numbers
 * must be unique and increasing but may leave a gap (a migration numbered ahead of one still in
 * review lands first); a gap that is filled after a later file was applied is refused at
 * migrate time (MIGRATION_OUT_OF_ORDER), since files are written against the ones before them.
 */
export function loadMigrations(dir?: string): Migration[] {
  if (dir === undefined && cached) return cached;
  const folder = dir ?? join(packageRoot(), "sql", "migrations");
  const files = readdirSync(folder)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  let previous = 0;
  const migrations = files.map((file) => {
    const match = FILE_RE.exec(file);
    const version = match ? Number(match[1]) : NaN;
    if (!match || !(version > previous)) {
      throw new Error(
        `migration file ${file} must be named NNNN_<slug>.sql with a number above ${String(previous).padStart(4, "0")} used by no other file`,
      );
    }
    previous = version;
    const sql = readFileSync(join(folder, file), "utf8");
    return {
      version,
      name: match[2]!,
      sql,
      checksum: createHash("sha256").update(sql).digest("hex"),
    };
  });
  if (dir === undefined) cached = migrations;
  return migrations;
}

/** The migration's SQL for a schema (`:SCHEMA` replaced by the escaped identifier). */
export function renderMigration(migration: Migration, schema: string): string {
  const quoted = quoteSchema(schema);
  return migration.sql.replace(/:SCHEMA\b/g, quoted);
}

function ledgerSql(quoted: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoted}.threadline_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
  )`;
}

export interface MigrateOptions {
  schema?: string;
  logger?: Logger;
  migrations?: Migration[];
}

/**
 * Client-side bound on one migration statement (and on waiting for the migration lock): 24 h.
 * Migrations lift `statement_timeout`; this only keeps a black-holed connection from hanging a
 * migrator for ever.
 */
export const MIGRATION_QUERY_TIMEOUT_MS = 86_400_000;

/**
 * Brings `schema` up to date. Safe to call from many processes at once, also through a
 * transaction-mode pooler (PgBouncer): the whole run is ONE transaction that first takes a
 * transaction-level advisory lock (`pg_advisory_xact_lock`, which, unlike a session lock, lives
 * exactly as long as the transaction on whatever server connection the pooler picked), then
 * creates the schema and ledger, checks the applied files' checksums, refuses a database
 * migrated by a newer Threadline, and applies each pending file, behind its own savepoint, after
 * inserting its ledger row. A racing migrator waits for the lock, then finds every file applied.
 * A failing file is rolled back with its ledger row; the files before it are committed.
 */
export async function migrate(
  pool: pg.Pool,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  const schema = options.schema ?? "public";
  const quoted = quoteSchema(schema);
  const logger = options.logger ?? silentLogger;
  const migrations = options.migrations ?? loadMigrations();
  let guarded: GuardedClient;
  try {
    guarded = await connectGuarded(pool);
  } catch (err) {
    throw toThreadlineError(err, "connecting to run migrations");
  }
  const client = guarded.client;
  let broken = false;
  let outcome: {
    applied: MigrationResult["applied"];
    alreadyApplied: number;
    failure: unknown;
  };
  try {
    await client.query("BEGIN");
    try {
      // DDL may legitimately run longer than the service's statement_timeout. SET LOCAL ends
      // with the transaction, so no setting leaks into a pooler's shared server connection.
      await client.query("SET LOCAL statement_timeout = 0");
      // Waiting for another migrator's lock gets a client-side bound of its own instead of the
      // pool's query_timeout (which is derived from statement_timeout).
      await client.query({
        text: "SELECT pg_advisory_xact_lock($1::int, hashtext($2))",
        values: [LOCK_CLASS, schema],
        query_timeout: MIGRATION_QUERY_TIMEOUT_MS,
      } as pg.QueryConfig);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      await client.query(ledgerSql(quoted));
      const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
        `SELECT version, name, checksum FROM ${quoted}.threadline_migrations ORDER BY version`,
      );
      checkLedger(rows, migrations, schema);
      const done = new Set(rows.map((r) => r.version));
      const applied: MigrationResult["applied"] = [];
      let failure: unknown;
      for (const migration of migrations) {
        if (done.has(migration.version)) continue;
        // Each file behind its own savepoint: a failing file is undone with its ledger row,
        // the files before it stay applied (as if each had committed on its own).
        await client.query("SAVEPOINT threadline_migration");
        try {
          await client.query(
            `INSERT INTO ${quoted}.threadline_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
            [migration.version, migration.name, migration.checksum],
          );
          await client.query({
            text: renderMigration(migration, schema),
            query_timeout: MIGRATION_QUERY_TIMEOUT_MS,
          } as pg.QueryConfig);
          await client.query("RELEASE SAVEPOINT threadline_migration");
        } catch (err) {
          await client.query("ROLLBACK TO SAVEPOINT threadline_migration");
          failure = err;
          break;
        }
        applied.push({ version: migration.version, name: migration.name });
      }
      await client.query("COMMIT");
      outcome = { applied, alreadyApplied: done.size, failure };
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
    for (const m of outcome.applied) {
      logger.info({ schema, version: m.version, name: m.name }, "migration applied");
    }
    if (outcome.failure !== undefined)
      throw toThreadlineError(outcome.failure, `migrating schema ${schema}`);
    return { schema, applied: outcome.applied, alreadyApplied: outcome.alreadyApplied };
  } catch (err) {
    broken = !(err instanceof ThreadlineError);
    throw toThreadlineError(err, `migrating schema ${schema}`);
  } finally {
    // A connection that failed mid-transaction is not returned to the pool.
    guarded.release(broken);
  }
}

function checkLedger(
  rows: Array<{ version: number; name: string; checksum: string }>,
  migrations: Migration[],
  schema: string,
): void {
  const known = new Map(migrations.map((m) => [m.version, m]));
  const applied = new Set(rows.map((r) => r.version));
  const newest = Math.max(0, ...applied);
  const skipped = migrations.find((m) => m.version < newest && !applied.has(m.version));
  if (skipped) {
    throw new ThreadlineError(
      "MIGRATION_OUT_OF_ORDER",
      `Migration ${skipped.version} (${skipped.name}) is not applied to schema ${schema}, which already has migration ${newest}: files run in number order only. Renumber the file above ${newest} before releasing it.`,
      { details: { schema, version: skipped.version, newest } },
    );
  }
  for (const row of rows) {
    const migration = known.get(row.version);
    if (!migration) {
      throw new ThreadlineError(
        "SCHEMA_TOO_NEW",
        `Schema ${schema} has migration ${row.version} (${row.name}) that this Threadline does not know: it was migrated by a newer version. Upgrade Threadline instead of running an older one against it.`,
        { details: { schema, version: row.version } },
      );
    }
    if (migration.checksum !== row.checksum) {
      throw new ThreadlineError(
        "MIGRATION_CHECKSUM_MISMATCH",
        `Migration ${row.version} (${row.name}) was edited after it was applied to schema ${schema}. Applied migrations are immutable: restore the file and add a new migration instead.`,
        { details: { schema, version: row.version } },
      );
    }
  }
}

/** The SQL `migrate` would run now, without running it (for `threadline migrate --dry-run`). */
export async function pendingMigrations(
  pool: pg.Pool,
  options: MigrateOptions = {},
): Promise<Array<Migration & { rendered: string }>> {
  const schema = options.schema ?? "public";
  const quoted = quoteSchema(schema);
  const migrations = options.migrations ?? loadMigrations();
  let rows: Array<{ version: number; name: string; checksum: string }> = [];
  try {
    const res = await pool.query<{ version: number; name: string; checksum: string }>(
      `SELECT version, name, checksum FROM ${quoted}.threadline_migrations ORDER BY version`,
    );
    rows = res.rows;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== "42P01" && code !== "3F000")
      throw toThreadlineError(err, "reading the migration ledger");
  }
  checkLedger(rows, migrations, schema);
  const done = new Set(rows.map((r) => r.version));
  return migrations
    .filter((m) => !done.has(m.version))
    .map((m) => ({ ...m, rendered: renderMigration(m, schema) }));
}

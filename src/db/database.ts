import type pg from "pg";
import type { ThreadlineConfig } from "../config/schema.js";
import { ConfigError } from "../errors.js";
import type { Logger } from "../logger.js";
import { createPool, poolStats, type PoolStats } from "./pool.js";

/** An open database: a real server from DATABASE_URL, or the embedded development store. */
export interface Database {
  kind: "postgres" | "embedded";
  pool: pg.Pool;
  /**
   * A pool for what needs a real session (migrations, LISTEN/NOTIFY): on `database.directUrl`
   * when set (a connection that bypasses a transaction-mode pooler), otherwise `pool` itself.
   */
  sessionPool: pg.Pool;
  /** Connection string without credentials, safe to log. */
  description: string;
  stats(): PoolStats;
  /** Ends the pool and, for the embedded store, stops its server. */
  close(): Promise<void>;
}

/** Removes the password from a connection string for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<unparseable connection string>";
  }
}

/**
 * Checks that `url` is a connection string `pg` can use: `postgres://` / `postgresql://` (or
 * `socket:`) URL, or an absolute Unix socket directory. Anything else would be read as a path
 * on some host called "base" and fail later as an unreachable server, which it is not.
 *
 * @param source where the value came from, named in the error
 * @throws ConfigError naming the source and the expected form
 */
export function checkConnectionString(
  url: string,
  source = "database.url (DATABASE_URL or --database-url)",
): void {
  if (url.startsWith("/")) return;
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    // Not a URL at all.
  }
  if (protocol === "postgres:" || protocol === "postgresql:" || protocol === "socket:") return;
  const shown = protocol === undefined ? "" : ` (got a ${protocol}// URL)`;
  throw new ConfigError([
    `${source} is not a PostgreSQL connection string${shown}; use postgres://user:password@host:5432/database`,
  ]);
}

/**
 * Opens the configured database. A real `database.url` (DATABASE_URL) always wins; without one,
 * the embedded Postgres (PGlite over its socket server, one connection) keeps data in
 * `database.embedded.dataDir`.
 *
 * @throws ConfigError for a URL that is not a PostgreSQL connection string
 */
export async function openDatabase(config: ThreadlineConfig, logger: Logger): Promise<Database> {
  const db = config.database;
  if (db.url) {
    checkConnectionString(db.url);
    if (db.directUrl) checkConnectionString(db.directUrl, "database.directUrl");
    const pool = createPool({
      connectionString: db.url,
      applicationName: db.applicationName,
      max: db.pool.size + db.pool.maxOverflow,
      idleTimeoutMs: db.pool.idleTimeout,
      recycleMs: db.pool.recycle,
      connectTimeoutMs: db.connectTimeout,
      statementTimeoutMs: db.statementTimeout,
      keepAlive: db.keepAlive,
      ...(db.queryTimeout !== undefined ? { queryTimeoutMs: db.queryTimeout } : {}),
      logger,
    });
    const description = redactUrl(db.url);
    logger.info({ database: description }, "using PostgreSQL");
    const sessionPool = db.directUrl
      ? createPool({
          connectionString: db.directUrl,
          applicationName: db.applicationName,
          max: 2,
          idleTimeoutMs: db.pool.idleTimeout,
          recycleMs: db.pool.recycle,
          connectTimeoutMs: db.connectTimeout,
          statementTimeoutMs: db.statementTimeout,
          keepAlive: db.keepAlive,
          logger,
        })
      : pool;
    if (db.directUrl)
      logger.info({ direct: redactUrl(db.directUrl) }, "direct connection for sessions");
    return {
      kind: "postgres",
      pool,
      sessionPool,
      description,
      stats: () => poolStats(pool),
      close: async () => {
        await pool.end();
        if (sessionPool !== pool) await sessionPool.end();
      },
    };
  }
  const { openEmbeddedDatabase } = await import("./embedded.js");
  return openEmbeddedDatabase(config, logger);
}

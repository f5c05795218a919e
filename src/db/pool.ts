import pg from "pg";
import type { Logger } from "../logger.js";
import { silentLogger } from "../logger.js";

export interface PoolOptions {
  connectionString: string;
  /** Further `pg.Pool` settings, applied over the ones derived from the options below. */
  pg?: pg.PoolConfig;
  /** `application_name` reported in pg_stat_activity. Default `threadline`. */
  applicationName?: string;
  /** Connections kept at most (`size + maxOverflow`). Default 10. */
  max?: number;
  /** Close idle connections after this many ms. Default 30 000. */
  idleTimeoutMs?: number;
  /** Replace a connection after this many ms of life (recycle). Default 30 min; 0 = never. */
  recycleMs?: number;
  /**
   * Give up after this many ms waiting for a connection: opening a new one, and also waiting for
   * a pooled one when all are in use (pg-pool's `connectionTimeoutMillis` bounds both). Default
   * 5 000.
   */
  connectTimeoutMs?: number;
  /** Server-side `statement_timeout` in ms. Default 30 000; 0 = none. */
  statementTimeoutMs?: number;
  /**
   * TCP keepalive on every connection. Default true: an idle connection whose peer vanished
   * (failover, NAT timeout, cable) is detected and dropped by the pool instead of failing the
   * next query that borrows it.
   */
  keepAlive?: boolean;
  /** Idle time before the first keepalive probe, in ms. Default 10 000. */
  keepAliveInitialDelayMs?: number;
  /**
   * Client-side limit on one statement, in ms. Default `statementTimeoutMs + 5 000` (35 000),
   * or none when `statementTimeoutMs` is 0; 0 = none. Unlike `statement_timeout`, which the
   * server enforces, this also fires when the network drops packets silently (lost NAT or
   * firewall state): the statement fails with "Query read timeout" (`DB_UNAVAILABLE`) and its
   * connection is discarded instead of hanging forever. Keep it above `statementTimeoutMs` so the
   * server's own cancel comes first; statements that lift `statement_timeout` (migrations) set
   * their own bound.
   */
  queryTimeoutMs?: number;
  logger?: Logger;
}

/** Pool occupancy as reported by `/health/db` and the metrics. */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/**
 * Creates a `pg.Pool` that can never crash the process: an idle client whose connection is
 * terminated (pg_terminate_backend, failover, network cut) emits `error` on the pool, and a pool
 * without a listener turns that into an uncaught exception. The listener only logs; the next
 * query gets a fresh connection.
 *
 * Sizing follows the config's `database.pool`: `max = size + maxOverflow` (pg has no separate
 * overflow, so overflow connections are simply the ones `idleTimeout` closes again), `recycle`
 * becomes `maxLifetimeSeconds`. pg has no pre-ping; its equivalent here is retry-on-first-use
 * (`withRetry`) plus TCP keepalive, see retry.ts.
 */
export function createPool(options: PoolOptions): pg.Pool {
  const logger = options.logger ?? silentLogger;
  const config: pg.PoolConfig = {
    connectionString: options.connectionString,
    application_name: options.applicationName ?? "threadline",
    max: options.max ?? 10,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    keepAlive: options.keepAlive ?? true,
    keepAliveInitialDelayMillis: options.keepAliveInitialDelayMs ?? 10_000,
  };
  const recycleMs = options.recycleMs ?? 1_800_000;
  if (recycleMs > 0) config.maxLifetimeSeconds = Math.max(1, Math.round(recycleMs / 1000));
  const statementTimeout = options.statementTimeoutMs ?? 30_000;
  if (statementTimeout > 0) config.statement_timeout = statementTimeout;
  const queryTimeout = options.queryTimeoutMs ?? defaultQueryTimeoutMs(statementTimeout);
  if (queryTimeout > 0) config.query_timeout = queryTimeout;
  return attachPoolErrorHandler(new pg.Pool({ ...config, ...options.pg }), logger);
}

/** How much longer than `statement_timeout` the client waits before it gives a statement up. */
export const QUERY_TIMEOUT_MARGIN_MS = 5_000;

/**
 * The client-side statement bound used when none is configured: `statement_timeout` plus
 * {@link QUERY_TIMEOUT_MARGIN_MS}, so a server that answers always cancels first; none when the
 * server-side timeout is off too (0).
 */
export function defaultQueryTimeoutMs(statementTimeoutMs: number): number {
  return statementTimeoutMs > 0 ? statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS : 0;
}

/** Adds the `error` listener every pool needs (see createPool). Returns the same pool. */
export function attachPoolErrorHandler(pool: pg.Pool, logger: Logger = silentLogger): pg.Pool {
  if (!(pool as PoolWithMarker)[HANDLED]) {
    pool.on("error", (err: Error & { code?: string }) => {
      logger.warn(
        { err: { message: err.message, code: err.code } },
        "idle database connection lost",
      );
    });
    (pool as PoolWithMarker)[HANDLED] = true;
  }
  return pool;
}

const HANDLED = Symbol.for("threadline.poolErrorHandler");
type PoolWithMarker = pg.Pool & { [HANDLED]?: boolean };

/** Current pool occupancy. */
export function poolStats(pool: pg.Pool): PoolStats {
  return {
    total: pool.totalCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
    max: pool.options.max ?? 10,
  };
}

/**
 * `pool.connect()` with an `error` listener attached before any other socket data is handled.
 *
 * Why not `await pool.connect()`: pg-pool removes its own listener when it hands a client out and
 * resolves the promise from inside the socket's data handler. When the server sends ReadyForQuery
 * and a FATAL (pg_terminate_backend during startup) in one TCP segment, the parser emits the FATAL
 * as `error` before the awaiting code has run, with no listener: an uncaught exception. The
 * callback form runs synchronously in that handler, so the listener is there first. `onError`
 * receives such an error; pg has then already marked the client unusable, so the next query on
 * it fails with a connection error and the holder releases it with that error.
 */
export function connectGuarded(
  pool: pg.Pool,
  onError: (err: Error) => void = ignoreError,
): Promise<GuardedClient> {
  return new Promise((resolve, reject) => {
    pool.connect((err, client, done) => {
      if (err || !client) {
        reject(err ?? new Error("pool returned no client"));
        return;
      }
      client.on("error", onError);
      let released = false;
      resolve({
        client,
        release(failure?: Error | boolean) {
          if (released) return;
          released = true;
          client.removeListener("error", onError);
          done(failure);
        },
      });
    });
  });
}

/** A client from {@link connectGuarded}; `release` hands it back once (an error discards it). */
export interface GuardedClient {
  client: pg.PoolClient;
  release(failure?: Error | boolean): void;
}

function ignoreError(): void {}

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Registry } from "prom-client";
import type pino from "pino";
import { createChatModel } from "../graphs/chat/models.js";
import type { FallbackCheckpointer } from "../checkpoint/index.js";
import { startCleanupSchedule, type CleanupSchedule } from "../cleanup/index.js";
import type { ThreadlineConfig } from "../config/schema.js";
import { openDatabase, type Database } from "../db/database.js";
import { isConnectionError } from "../db/errors.js";
import { migrate } from "../db/migrator.js";
import { loadGraphs } from "../graphs/load.js";
import type { GraphSpec } from "../graphs/spec.js";
import { silentLogger, type Logger } from "../logger.js";
import { ThreadlineError } from "../errors.js";
import { createApp, type ThreadlineApp } from "../http/app.js";
import { describeError } from "../http/errors.js";
import { buildSavers } from "./savers.js";

/**
 * The address `threadline serve` binds: `server.host` when given (file, env or `--host`);
 * otherwise loopback without API keys (an open service stays on this machine) and all
 * interfaces with them.
 */
export function listenHost(config: Pick<ThreadlineConfig, "server" | "auth">): string {
  if (config.server.host !== undefined) return config.server.host;
  return config.auth.apiKeys.length > 0 ? "0.0.0.0" : "127.0.0.1";
}

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return (
    h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1"
  );
}

/** A listen failure as the operator can act on it: the address, and how to pick another. */
function listenError(err: Error, host: string, config: ThreadlineConfig): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") {
    return new ThreadlineError(
      "PORT_IN_USE",
      `${host}:${config.server.port} is already in use by another process (another threadline serve?); stop it, or pick another port with --port or PORT`,
      { cause: err, details: { host, port: config.server.port } },
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new ThreadlineError(
      "CONFIG_INVALID",
      `cannot listen on ${host}: not an address of this machine; use --host 127.0.0.1, 0.0.0.0 or one of its addresses`,
      { cause: err, details: { host } },
    );
  }
  return err;
}

/** How long each closing step of a shutdown may take (cancelled streams, cleanup, pools), in ms. */
export const CLOSE_TIMEOUT_MS = 5_000;

/**
 * True when `promise` settled within `ms`, false when the time ran out first (the promise keeps
 * running; a later rejection is swallowed).
 */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Options of {@link startService}. */
export interface StartServiceOptions {
  logger?: Logger | pino.Logger;
  /** Registry for `/metrics`; default a new one with Node's default metrics. */
  registry?: Registry;
  /** Run the TTL cleanup schedule (when `cleanup.enabled`). Default true. */
  cleanup?: boolean;
  /** Folder of the built page served at `/` (see `AppDeps.webRoot`). Default `dist/web`. */
  webRoot?: string | false;
  /**
   * User graphs to serve (see `mergeGraphSpecs`); loaded before anything else starts, so a
   * graph that does not load fails the start with CONFIG_INVALID. Default: none.
   */
  graphs?: readonly GraphSpec[];
}

/** A running service. */
export interface RunningService {
  app: ThreadlineApp;
  server: Server;
  db: Database;
  /** `http://host:port` the service listens on. */
  url: string;
  /**
   * Graceful shutdown, idempotent: readiness 503 and new chats refused, running streams get up
   * to `server.shutdownTimeout` to finish and are then cancelled, the listener closes, the
   * cleanup schedule stops, pending fallback writes get up to `server.shutdownTimeout` more to
   * reach Postgres (what does not is logged at error level with its count), pools close. Every
   * step is bounded (cancelled streams, cleanup and pools by {@link CLOSE_TIMEOUT_MS} each), so
   * it completes even when the network black-holes the database: at most
   * `2 x server.shutdownTimeout + 4 x CLOSE_TIMEOUT_MS`.
   */
  shutdown(reason?: string): Promise<void>;
}

/**
 * Starts the whole service the way `threadline serve` does: database (DATABASE_URL or the
 * embedded store), migrations, PostgresCheckpointer (behind the FallbackCheckpointer when
 * `fallback.enabled`), model, cleanup schedule, HTTP listener on `server.host:server.port`.
 */
export async function startService(
  config: ThreadlineConfig,
  options: StartServiceOptions = {},
): Promise<RunningService> {
  const logger = options.logger ?? silentLogger;
  const registry = options.registry ?? new Registry();
  if (!options.registry) collectDefaultMetrics({ register: registry });
  const schema = config.database.schema;

  const { model, info } = createChatModel(config.model);
  const graphs = await loadGraphs(options.graphs ?? []);
  for (const g of graphs) logger.info({ graph: g.name, origin: g.origin }, "graph loaded");
  const db = await openDatabase(config, logger);
  let cleanup: CleanupSchedule | undefined;
  let fallback: FallbackCheckpointer | undefined;
  try {
    try {
      const migrated = await migrate(db.sessionPool, { schema, logger });
      logger.info({ schema, applied: migrated.applied.length }, "database schema up to date");
    } catch (err) {
      // With the fallback on, an unreachable Postgres at start is an outage like any other:
      // serve from memory now, install the schema and replay when it answers.
      if (!config.fallback.enabled || !isConnectionError(err)) throw err;
      logger.warn(
        { err: { message: (err as Error).message } },
        "Postgres unreachable at start: serving from the in-memory fallback until it answers",
      );
    }

    const savers = await buildSavers(config, db, { logger, registry });
    fallback = savers.fallback;
    if (options.cleanup !== false && config.cleanup.enabled) {
      cleanup = startCleanupSchedule({
        pool: db.pool,
        schema,
        cleanup: config.cleanup,
        history: config.history,
        logger,
        registry,
      });
    }

    const fb = fallback;
    const app = createApp({
      checkpointer: savers.checkpointer,
      model,
      config,
      logger,
      db,
      registry,
      graphs,
      ...(fb ? { fallbackStatus: () => fb.status() } : {}),
      cleanupStatus: () => cleanup?.lastRun(),
      ...(options.webRoot !== undefined ? { webRoot: options.webRoot } : {}),
    });
    const server = createServer(app);
    // Replies can stream for minutes: only the request itself is time-boxed.
    server.requestTimeout = 60_000;
    const host = listenHost(config);
    server.listen(config.server.port, host);
    // `once` rejects with the server's 'error' event (EADDRINUSE, ...) while it waits.
    await once(server, "listening").catch((err: unknown) => {
      throw listenError(err as Error, host, config);
    });
    await app.threadline.startRuns();
    const address = server.address() as AddressInfo;
    const bound = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const wildcard = bound === "0.0.0.0" || bound === "[::]";
    // `url` is where this machine reaches the service; the log names the address actually bound.
    const url = `http://${wildcard ? "127.0.0.1" : bound}:${address.port}`;
    const open = config.auth.apiKeys.length === 0;
    logger.info(
      {
        url,
        address: `${bound}:${address.port}`,
        database: db.description,
        databaseKind: db.kind,
        schema,
        model: info,
        fallback: config.fallback.enabled,
        auth: open ? "open (no API keys)" : `${config.auth.apiKeys.length} API key(s)`,
        cors: config.server.cors.origins.length > 0 ? config.server.cors.origins : "off",
      },
      `threadline listening on http://${bound}:${address.port}${wildcard ? ` (all interfaces; ${url} from this machine)` : ""} (${db.kind === "embedded" ? "embedded development database" : "PostgreSQL"})`,
    );
    if (open && !isLoopback(address.address)) {
      logger.warn(
        { address: `${bound}:${address.port}` },
        `WARNING: listening on ${bound}:${address.port} beyond loopback WITHOUT API keys: anyone who can reach this address can use the API (and spend the model's credits). Set THREADLINE_API_KEYS, or bind to 127.0.0.1 (--host 127.0.0.1)`,
      );
    }

    let stopping: Promise<void> | undefined;
    const shutdown = (reason = "shutdown") =>
      (stopping ??= (async () => {
        const control = app.threadline;
        control.drain();
        logger.info(
          {
            reason,
            activeStreams: control.activeStreams(),
            timeoutMs: config.server.shutdownTimeout,
          },
          "draining: readiness is 503, new chats are refused",
        );
        // The listener stays open while streams and runs finish, so probes see 503 rather than
        // refusals; the run worker claims nothing more (pending runs wait for other instances).
        const finished = await control.waitForStreams(config.server.shutdownTimeout);
        if (!finished) {
          logger.warn(
            { activeStreams: control.activeStreams() },
            "shutdown deadline reached: cancelling streams",
          );
          // A stream blocked on a database that does not answer may not end when cancelled.
          if (!(await within(control.abortStreams(), CLOSE_TIMEOUT_MS)))
            logger.warn({}, "streams did not end after cancellation; closing anyway");
        }
        if (!(await within(control.stopRuns(), CLOSE_TIMEOUT_MS)))
          logger.warn({}, "stopping the run worker timed out");
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        const stopped = cleanup
          ?.stop()
          .catch((err: unknown) =>
            logger.warn({ err: describeError(err) }, "stopping cleanup failed"),
          );
        if (stopped && !(await within(stopped, CLOSE_TIMEOUT_MS)))
          logger.warn({}, "the cleanup sweep did not stop in time; closing anyway");
        if (fallback) {
          // Pending entries get one more bounded chance to reach Postgres; what does not is
          // reported (and logged again by close()), never waited for without end.
          const fb = fallback;
          let flushed = false;
          const inTime = await within(
            fb.flush().then((done) => (flushed = done)),
            config.server.shutdownTimeout,
          );
          if (!flushed) {
            const { pending, pendingBytes } = fb.status();
            logger.error(
              { pending, pendingBytes, timeoutMs: config.server.shutdownTimeout },
              inTime
                ? "fallback entries still pending at shutdown (Postgres unreachable): they are lost with this process"
                : "fallback entries not flushed within server.shutdownTimeout: they are lost with this process",
            );
          }
          if (
            !(await within(
              fb.close().catch(() => undefined),
              CLOSE_TIMEOUT_MS,
            ))
          )
            logger.warn({}, "closing the fallback checkpointer timed out");
        }
        // pool.end() waits for every checked-out connection; one blocked on a black-holed
        // socket is released only by its query_timeout. Do not wait for that.
        if (!(await within(db.close(), CLOSE_TIMEOUT_MS)))
          logger.warn(
            { timeoutMs: CLOSE_TIMEOUT_MS },
            "database connections did not close in time (unreachable?); exiting anyway",
          );
        logger.info({ reason }, "threadline stopped");
      })());
    return { app, server, db, url, shutdown };
  } catch (err) {
    await cleanup?.stop().catch(() => undefined);
    await fallback?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}

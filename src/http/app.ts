import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import express, {
  Router,
  type Express,
  type NextFunction,
  type Request,
  type Response,
} from "express";
import { rateLimit, ipKeyGenerator } from "express-rate-limit";
import helmet from "helmet";
import type pino from "pino";
import { pinoHttp } from "pino-http";
import { Registry } from "prom-client";
import { buildChatGraph } from "../graphs/chat/graph.js";
import type { CleanupLastRun } from "../cleanup/schedule.js";
import {
  builtInGraph,
  GraphRegistry,
  type GraphModule,
  type ServableGraph,
} from "../graphs/load.js";
import { ThreadStore } from "../runs/threads.js";
import { RunNotifier } from "../runs/notifier.js";
import { RunQueue } from "../runs/queue.js";
import { RunWorker } from "../runs/worker.js";
import { agentServerRoutes, errorEvent, registerAgentServerMetrics } from "./agent-server/index.js";
import type { ThreadlineConfig } from "../config/schema.js";
import type { Database } from "../db/database.js";
import { ThreadlineError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";
import { createApiKeyAuth, identify, principalOf, requireApiKey } from "./auth.js";
import { chatRoutes } from "./chat.js";
import { TurnReadReuse } from "./turn-read.js";
import type { ServiceState } from "./service-state.js";
import { corsMiddleware } from "./cors.js";
import { describeError, errorMiddleware } from "./errors.js";
import { healthRoutes, type FallbackStatus } from "./health.js";
import {
  InstrumentedCheckpointer,
  registerServiceMetrics,
  routeLabel,
  routePrefix,
} from "./metrics.js";
import { ThreadOwners } from "./owners.js";
import { statusRoutes } from "./status.js";
import { defaultWebRoot, webRoutes } from "./web.js";

/** Everything the HTTP service depends on; passed in so tests and embedders choose each part. */
export interface AppDeps {
  /** Where threads live: PostgresCheckpointer, FallbackCheckpointer, or any LangGraph saver. */
  checkpointer: BaseCheckpointSaver;
  /** The chat model (see `createChatModel`); the offline model needs no network. */
  model: BaseChatModel;
  /** Validated configuration: `server`, `auth` and `database.schema` are read. */
  config: ThreadlineConfig;
  /**
   * Logger; a pino logger also gets per-request logs (pino-http, without bodies, query strings
   * or auth headers). Default: silent.
   */
  logger?: Logger | pino.Logger;
  /** The open database: `/health/*` pings it and reports its pool; required with API keys. */
  db?: Database;
  /** The fallback checkpointer's status; when set, a Postgres outage keeps the service ready. */
  fallbackStatus?: () => FallbackStatus;
  /** Prometheus registry for `/metrics`. Default: a new registry. */
  registry?: Registry;
  /** The TTL schedule's last run, for `GET /api/status` (the page's ops panel). */
  cleanupStatus?: () => CleanupLastRun | undefined;
  /**
   * Folder of the built page served at `/` (`npm run build` writes `dist/web/`). Default: the
   * package's `dist/web`; `false` serves no page.
   */
  webRoot?: string | false;
  /**
   * User graphs (see `loadGraphs`), served by the Agent Server routes next to the built-in
   * `chat` graph (a user graph named `chat` replaces it there). Default: none.
   */
  graphs?: readonly GraphModule[];
  /** Version reported by `GET /info`. Default `0.0.0`. */
  version?: string;
}

/** Lifecycle controls for graceful shutdown. */
export interface ServiceControl {
  /** True once {@link drain} was called. */
  readonly draining: boolean;
  /** Readiness turns 503 and new chats are refused with 503; running streams continue. */
  drain(): void;
  /** Chat streams in flight. */
  activeStreams(): number;
  /** Resolves true when every stream has ended, false if `timeoutMs` passed first. */
  waitForStreams(timeoutMs: number): Promise<boolean>;
  /** Cancels every running stream (each ends with an `error` chunk) and waits for them. */
  abortStreams(): Promise<void>;
  /**
   * Starts this instance's run worker (claims queued runs of every instance, reaps runs of dead
   * workers, sweeps old events) and its LISTEN connection. `startService` calls it; an app used
   * alone executes only the streamed and waited runs it receives and the runs it enqueues.
   */
  startRuns(): Promise<void>;
  /** Stops claiming runs (running ones go on) and closes the LISTEN connection. */
  stopRuns(): Promise<void>;
  /**
   * The saver every route and graph of this app uses: `AppDeps.checkpointer` behind the metrics
   * wrapper. Exposed so the whole stack the service runs can be tested as one saver.
   */
  readonly checkpointer: BaseCheckpointSaver;
}

/** The Express app, with `threadline` lifecycle controls attached. */
export type ThreadlineApp = Express & { threadline: ServiceControl };

function isPino(logger: Logger | pino.Logger): logger is pino.Logger {
  return typeof (logger as pino.Logger).child === "function" && "levels" in logger;
}

/**
 * helmet's headers, minus what belongs behind TLS only: HSTS and CSP `upgrade-insecure-requests`
 * are sent only on requests that arrived over HTTPS (`req.secure`, which believes
 * `X-Forwarded-Proto` when `server.trustProxy` is on). On plain HTTP they would tell browsers to
 * switch to an HTTPS port that does not exist. With CORS origins configured,
 * `Cross-Origin-Resource-Policy` is `cross-origin` so allowed pages can use the answers.
 */
function securityHeaders(cors: boolean) {
  const crossOriginResourcePolicy = { policy: cors ? "cross-origin" : "same-origin" } as const;
  const plain = helmet({
    strictTransportSecurity: false,
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
    crossOriginResourcePolicy,
  });
  const secure = helmet({ crossOriginResourcePolicy });
  return (req: Request, res: Response, next: NextFunction) =>
    (req.secure ? secure : plain)(req, res, next);
}

/** A request id from a caller's proxy is kept only when it is short and harmless. */
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the Threadline HTTP service: `POST /api/chat` (AI SDK UI message stream v1),
 * `GET /api/chat/:id/messages`, `DELETE /api/chat/:id`, `/health/live|ready|db`, `/metrics`.
 * The caller owns the listener and the lifecycle (`app.threadline.drain()` on shutdown).
 *
 * @throws ThreadlineError CONFIG_INVALID when API keys are configured but no database is given
 *   (thread ownership is stored in Postgres).
 */
export function createApp(deps: AppDeps): ThreadlineApp {
  const { config, db, fallbackStatus } = deps;
  const logger = deps.logger ?? silentLogger;
  const registry = deps.registry ?? new Registry();
  const auth = createApiKeyAuth(config.auth.apiKeys);
  if (auth.enabled && !db) {
    throw new ThreadlineError(
      "CONFIG_INVALID",
      "API keys are configured but createApp got no database to record thread owners in",
    );
  }
  const metrics = registerServiceMetrics(registry, {
    ...(db ? { poolStats: () => db.stats() } : {}),
    ...(fallbackStatus ? { fallbackStatus } : {}),
  });
  // Metrics inside the read reuse: they count the reads that reach the saver.
  const checkpointer = new TurnReadReuse(new InstrumentedCheckpointer(deps.checkpointer, metrics));
  const graph = buildChatGraph({
    checkpointer,
    model: deps.model,
    ...(config.model.systemPrompt !== undefined ? { systemPrompt: config.model.systemPrompt } : {}),
  });
  const userGraphs = (deps.graphs ?? []).map((g) => g.bind(checkpointer));
  const graphs = new GraphRegistry(
    [
      ...(userGraphs.some((g) => g.name === "chat")
        ? []
        : [
            builtInGraph(
              "chat",
              graph as unknown as ServableGraph,
              "Threadline's built-in chat graph",
            ),
          ]),
      ...userGraphs,
    ],
    "chat",
  );
  const owners =
    auth.enabled && db ? new ThreadOwners(db.pool, { schema: config.database.schema }) : undefined;
  const state: ServiceState = { draining: false, streams: new Set() };

  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.server.trustProxy);
  // Before every router, so each route and each error answer carries it (off without origins).
  app.use(
    corsMiddleware({ origins: config.server.cors.origins, maxAgeMs: config.server.cors.maxAge }),
  );
  app.use(securityHeaders(config.server.cors.origins.length > 0));

  if (isPino(logger)) {
    app.use(
      pinoHttp({
        logger,
        genReqId: (req: IncomingMessage, res: ServerResponse) => {
          const given = req.headers["x-request-id"];
          const id = typeof given === "string" && REQUEST_ID_RE.test(given) ? given : randomUUID();
          res.setHeader("x-request-id", id);
          return id;
        },
        // Probes and scrapes would drown the log; their failures show in metrics instead.
        autoLogging: { ignore: (req) => /^\/(health|metrics)/.test(req.url ?? "") },
        serializers: {
          // Only what operators need: no headers (Authorization), no query, no body.
          req: (req: { id?: unknown; method?: string; url?: string }) => ({
            id: req.id,
            method: req.method,
            path: (req.url ?? "").split("?")[0],
          }),
          res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        },
        customProps: (_req, res) => {
          const principal = principalOf((res as unknown as Response).locals ?? {});
          return principal ? { keyId: principal.keyId } : {};
        },
      }),
    );
  }

  app.use((req: Request, res: Response, next: NextFunction) => {
    const end = metrics.httpDuration.startTimer();
    res.once("close", () => {
      const labels = {
        method: req.method,
        route: routeLabel(req, res),
        status: String(res.statusCode),
      };
      end(labels);
      metrics.httpRequests.inc(labels);
    });
    if (state.draining) res.setHeader("connection", "close");
    next();
  });

  const webRoot = deps.webRoot ?? defaultWebRoot();
  if (webRoot !== false) app.use(webRoutes(webRoot));

  app.use(
    "/health",
    healthRoutes({ ...(db ? { db } : {}), ...(fallbackStatus ? { fallbackStatus } : {}), state }),
  );
  app.get("/metrics", async (_req, res) => {
    res.setHeader("content-type", registry.contentType);
    res.send(await registry.metrics());
  });

  const limiter = rateLimit({
    windowMs: config.server.rateLimit.window,
    limit: config.server.rateLimit.max,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    // Per key when the caller has one, per client address otherwise (IPv6 grouped by /56).
    keyGenerator: (req, res) => {
      const principal = principalOf(res.locals);
      return principal ? `key:${principal.keyId}` : `ip:${ipKeyGenerator(req.ip ?? "unknown")}`;
    },
    handler: (_req, _res, next) => {
      next(new ThreadlineError("RATE_LIMITED", "too many requests; slow down and retry later"));
    },
    // Its startup checks print with console.error; the settings they check are ours to choose.
    validate: false,
  });

  // Tells the page whether to ask for a key before anything else (no key needed for this).
  app.get("/api/auth", (_req, res) => {
    res.json({ apiKeyRequired: auth.enabled });
  });
  const status = Router().use(
    "/status",
    routePrefix("/api/status"),
    statusRoutes({
      config,
      state,
      ...(db ? { db } : {}),
      ...(fallbackStatus ? { fallbackStatus } : {}),
      ...(deps.cleanupStatus ? { cleanupStatus: deps.cleanupStatus } : {}),
      ...(owners ? { owners } : {}),
    }),
  );

  app.use(
    "/api",
    routePrefix("/api"),
    identify(auth),
    limiter,
    requireApiKey(auth),
    chatRoutes({
      graphs,
      checkpointer,
      turnReads: checkpointer,
      ...(owners ? { owners } : {}),
      state,
      metrics,
      logger,
      bodyLimit: config.server.bodyLimit,
    }),
    status,
  );

  let runs: { queue: RunQueue; notifier: RunNotifier; worker: RunWorker } | undefined;
  if (db) {
    // LangGraph's Agent Server API at the root (needs Postgres for threads and runs).
    const threads = new ThreadStore(db.pool, config.database.schema);
    const agentMetrics = registerAgentServerMetrics(registry);
    const queue = new RunQueue(db.pool, config.database.schema, {
      preparedStatements: config.database.preparedStatements,
    });
    // The embedded database has one connection: no LISTEN there, polling only.
    const notifier = new RunNotifier(
      db.kind === "postgres" ? db.sessionPool : undefined,
      config.database.schema,
      logger,
    );
    const worker = new RunWorker({
      queue,
      notifier,
      threads,
      graphs,
      checkpointer,
      logger,
      settings: config.runs,
      draining: () => state.draining,
      track: (execution) => {
        state.streams.add(execution);
        return () => state.streams.delete(execution);
      },
      errorEvent,
      describeError,
      onRunEnd: (graph, outcome, seconds) => {
        agentMetrics.runs.inc({ graph, outcome });
        agentMetrics.runDuration.observe({ graph, outcome }, seconds);
      },
    });
    runs = { queue, notifier, worker };
    app.use(
      agentServerRoutes(
        {
          graphs,
          threads,
          checkpointer,
          ...(owners ? { owners } : {}),
          state,
          runs: { queue, notifier, worker, pollMs: config.runs.pollInterval },
          metrics: agentMetrics,
          logger,
        },
        {
          before: [
            identify(auth),
            limiter,
            requireApiKey(auth),
            express.json({ limit: config.server.bodyLimit }),
          ],
        },
        { version: deps.version ?? "0.0.0" },
      ),
    );
  }

  app.use((_req: Request, _res: Response, next: NextFunction) => {
    next(new ThreadlineError("NOT_FOUND", "no such route"));
  });
  app.use(errorMiddleware(logger));

  const control: ServiceControl = {
    checkpointer,
    get draining() {
      return state.draining;
    },
    drain() {
      state.draining = true;
    },
    activeStreams: () => state.streams.size,
    async waitForStreams(timeoutMs) {
      const all = Promise.all([...state.streams].map((s) => s.done)).then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      try {
        return await Promise.race([all, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async startRuns() {
      if (!runs) return;
      await runs.notifier.start();
      runs.worker.start();
    },
    async stopRuns() {
      if (!runs) return;
      runs.worker.stop();
      await runs.notifier.stop();
    },
    async abortStreams() {
      const streams = [...state.streams];
      for (const s of streams) s.abort();
      await Promise.all(streams.map((s) => s.done));
    },
  };
  return Object.assign(app, { threadline: control });
}

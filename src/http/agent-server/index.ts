import { Router, type RequestHandler } from "express";
import { ThreadlineError } from "../../errors.js";
import { assistantRoutes } from "./assistants.js";
import { agentServerErrors, type AgentServerDeps } from "./common.js";
import { runRoutes } from "./runs.js";
import { stateRoutes } from "./state.js";
import { threadRoutes } from "./threads.js";

export {
  errorEvent,
  registerAgentServerMetrics,
  type AgentServerDeps,
  type AgentServerMetrics,
} from "./common.js";

/** The path prefixes the Agent Server API owns at the root of the service. */
export const AGENT_SERVER_PATHS = ["/assistants", "/threads", "/runs", "/store"];

/** Middleware run before the resources (auth, rate limit, JSON body parsing). */
export interface AgentServerMiddleware {
  /** Answers 401 without a valid key when keys are configured. */
  before: RequestHandler[];
}

/**
 * LangGraph's Agent Server API (what `@langchain/langgraph-sdk` and `useStream` call): `/ok` and
 * `/info` open; `/assistants`, `/threads`, `/runs` behind `middleware.before`. Errors are
 * `{ "detail": message }` with the Agent Server's status codes. Anything under those prefixes
 * that is not implemented (the store, crons) answers 404 `{ detail }`.
 */
export function agentServerRoutes(
  deps: AgentServerDeps,
  middleware: AgentServerMiddleware,
  info: { version: string },
): Router {
  const router = Router();
  router.get("/ok", (_req, res) => {
    res.json({ ok: true });
  });
  router.get("/info", (_req, res) => {
    res.json({
      version: info.version,
      server: "threadline",
      langgraph_js_version: null,
      flags: { assistants: true, crons: false, langsmith: false, store: false },
    });
  });

  // Routes carry their full paths (so metrics label them as `/threads/:thread_id`); the
  // middleware, the 404 for what is not implemented and the error shape apply under the prefixes.
  router.use(AGENT_SERVER_PATHS, ...middleware.before);
  router.use(assistantRoutes(deps));
  router.use(threadRoutes(deps));
  router.use(stateRoutes(deps));
  router.use(runRoutes(deps));
  router.use(AGENT_SERVER_PATHS, (req, _res, next) => {
    next(
      new ThreadlineError(
        "NOT_FOUND",
        `${req.method} ${req.originalUrl.split("?")[0]} is not implemented by Threadline (see README: Serving your own graphs)`,
      ),
    );
  });
  router.use(AGENT_SERVER_PATHS, agentServerErrors(deps.logger));
  return router;
}

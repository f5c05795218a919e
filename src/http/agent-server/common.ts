import type { ErrorRequestHandler, Request, Response } from "express";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { Counter, Histogram, type Registry } from "prom-client";
import type { z } from "zod";
import { ThreadlineError } from "../../errors.js";
import type { GraphRegistry, LoadedGraph } from "../../graphs/load.js";
import type { Logger } from "../../logger.js";
import type { ThreadRecord, ThreadStore } from "../../runs/threads.js";
import type { RunNotifier } from "../../runs/notifier.js";
import type { RunQueue } from "../../runs/queue.js";
import type { RunWorker } from "../../runs/worker.js";
import { serialize } from "../../runs/serialize.js";
import { principalOf } from "../auth.js";
import type { ServiceState } from "../chat.js";
import { describeError, toHttpError } from "../errors.js";
import type { ThreadOwners } from "../owners.js";

/** Counters of the Agent Server's runs. */
export interface AgentServerMetrics {
  runs: Counter<"graph" | "outcome">;
  runDuration: Histogram<"graph" | "outcome">;
}

/** Registers (once per registry) the run metrics. */
export function registerAgentServerMetrics(registry: Registry): AgentServerMetrics {
  const runs =
    (registry.getSingleMetric("threadline_agent_runs_total") as
      Counter<"graph" | "outcome"> | undefined) ??
    new Counter({
      name: "threadline_agent_runs_total",
      help: "Agent Server runs by graph and outcome (success, interrupted, error, cancelled)",
      labelNames: ["graph", "outcome"],
      registers: [registry],
    });
  const runDuration =
    (registry.getSingleMetric("threadline_agent_run_duration_seconds") as
      Histogram<"graph" | "outcome"> | undefined) ??
    new Histogram({
      name: "threadline_agent_run_duration_seconds",
      help: "Agent Server run duration by graph and outcome",
      labelNames: ["graph", "outcome"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    });
  return { runs, runDuration };
}

/** What the Agent Server routes need. */
export interface AgentServerDeps {
  graphs: GraphRegistry;
  threads: ThreadStore;
  /** The saver every graph runs on (thread copy and delete go through it too). */
  checkpointer: BaseCheckpointSaver;
  /** Present when API keys are configured: threads belong to the key that created them. */
  owners?: ThreadOwners;
  state: ServiceState;
  /** The run queue, its notifications and this instance's worker. */
  runs: { queue: RunQueue; notifier: RunNotifier; worker: RunWorker; pollMs: number };
  metrics: AgentServerMetrics;
  logger: Logger;
}

/**
 * The `error` event of a failed run: Threadline's own failures by code and message; an exception
 * raised by the user's graph is part of their application and shown as the Agent Server does
 * (name and message).
 */
export function errorEvent(err: unknown): { error: string; message: string } {
  const mapped = toHttpError(err);
  if (err instanceof ThreadlineError || mapped.status < 500 || !(err instanceof Error))
    return { error: mapped.body.error.code, message: mapped.body.error.message };
  return { error: err.name, message: err.message };
}

/** Parses a request body (or query) with a zod schema; a mismatch is a 422 naming the fields. */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "body"}: ${i.message}`)
    .join("; ");
  throw new ThreadlineError("INVALID_INPUT", problems);
}

/** Sends a value as JSON in the wire form (LangChain messages as dicts). */
export function sendJson(res: Response, status: number, value: unknown): void {
  res.status(status).type("application/json").send(serialize(value));
}

/** Sends JSON text that is already in the wire form (see {@link sendJson}). */
export function sendJsonText(res: Response, status: number, text: string): void {
  res.status(status).type("application/json").send(text);
}

/** The assistant named by an id or graph name, or 404. */
export function assistantOr404(deps: AgentServerDeps, id: string): LoadedGraph {
  const graph = deps.graphs.find(id);
  if (!graph) throw new ThreadlineError("NOT_FOUND", `assistant ${id} not found`);
  return graph;
}

/** The caller's key hash when API keys are on. */
export function ownerHash(res: Response): string | undefined {
  return principalOf(res.locals)?.keyHash;
}

/**
 * The thread, if it exists and the caller may see it; another key's thread is 404 like a
 * missing one, so ids do not leak across keys.
 */
export async function threadOr404(
  deps: AgentServerDeps,
  res: Response,
  threadId: string,
): Promise<ThreadRecord> {
  const key = ownerHash(res);
  const [thread, allowed] = await Promise.all([
    deps.threads.get(threadId),
    deps.owners && key !== undefined ? deps.owners.isOwner(threadId, key) : Promise.resolve(true),
  ]);
  if (!thread || !allowed) throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
  return thread;
}

/** The graph a thread runs: its `metadata.graph_id`, else the default graph. */
export function graphOfThread(deps: AgentServerDeps, thread: ThreadRecord): LoadedGraph {
  const id = thread.metadata.graph_id;
  const found = typeof id === "string" ? deps.graphs.find(id) : undefined;
  return found ?? deps.graphs.find(deps.graphs.defaultName)!;
}

/** A route parameter as a string (Express 5 types them loosely). */
export function param(req: Request, name: string): string {
  const value: unknown = (req.params as Record<string, unknown>)[name];
  return typeof value === "string" ? value : "";
}

/**
 * Errors in the Agent Server's shape, `{ "detail": message }`: unknown ids 404, bad bodies and
 * malformed JSON 422, a busy or existing thread 409, server failures with a fixed text (details
 * to the log only).
 */
export function agentServerErrors(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    const { status, body, internal } = toHttpError(err);
    const isBodyError =
      status === 400 &&
      (err instanceof ThreadlineError ||
        (err !== null && typeof err === "object" && "type" in err));
    const finalStatus = isBodyError ? 422 : status;
    if (finalStatus >= 500) {
      logger[internal ? "error" : "warn"](
        { err: describeError(err), status: finalStatus },
        internal ? "request failed" : "request failed (dependency)",
      );
    }
    if (finalStatus === 503 || finalStatus === 429) res.setHeader("retry-after", "1");
    res.status(finalStatus).json({ detail: body.error.message });
    void next;
  };
}

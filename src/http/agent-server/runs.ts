import { once } from "node:events";
import { randomUUID } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";
import { Command, type StateSnapshot } from "@langchain/langgraph";
import { Router, type Request, type Response } from "express";
import { z } from "zod";
import { ThreadlineError } from "../../errors.js";
import type { LoadedGraph } from "../../graphs/load.js";
import { interruptsOf, serialize, toJson } from "../../runs/serialize.js";
import { STREAM_MODES, streamRun, type RunEvent, type StreamMode } from "../../runs/stream.js";
import { RUN_LEASE_MS, type Json, type ThreadStatus } from "../../runs/threads.js";
import type { ActiveStream } from "../chat.js";
import { describeError, toHttpError } from "../errors.js";
import {
  assistantOr404,
  ownerHash,
  param,
  parseBody,
  sendJson,
  threadOr404,
  type AgentServerDeps,
} from "./common.js";
import { checkpointRef } from "./state.js";

const nodes = z.union([z.literal("*"), z.array(z.string())]);
const streamMode = z.enum(STREAM_MODES);

const runBody = z.object({
  assistant_id: z.string().min(1),
  input: z.unknown().optional(),
  command: z
    .object({
      resume: z.unknown().optional(),
      update: z.unknown().optional(),
      goto: z.unknown().optional(),
    })
    .nullish(),
  config: z
    .object({
      configurable: z.record(z.string(), z.unknown()).nullish(),
      tags: z.array(z.string()).nullish(),
      recursion_limit: z.number().int().positive().nullish(),
      metadata: z.record(z.string(), z.unknown()).nullish(),
    })
    .nullish(),
  context: z.record(z.string(), z.unknown()).nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  stream_mode: z.union([streamMode, z.array(streamMode)]).nullish(),
  stream_subgraphs: z.boolean().nullish(),
  stream_resumable: z.boolean().nullish(),
  checkpoint: checkpointRef.nullish(),
  checkpoint_id: z.string().min(1).nullish(),
  interrupt_before: nodes.nullish(),
  interrupt_after: nodes.nullish(),
  multitask_strategy: z.enum(["reject", "interrupt", "rollback", "enqueue"]).nullish(),
  on_disconnect: z.enum(["cancel", "continue"]).nullish(),
  on_completion: z.enum(["delete", "keep"]).nullish(),
  if_not_exists: z.enum(["create", "reject"]).nullish(),
  durability: z.enum(["sync", "async", "exit"]).nullish(),
  checkpoint_during: z.boolean().nullish(),
});
type RunBody = z.output<typeof runBody>;

/** A run that holds its thread and is about to execute. */
interface PreparedRun {
  threadId: string;
  runId: string;
  graph: LoadedGraph;
  body: RunBody;
  stateless: boolean;
}

/** How a run ended. */
interface RunOutcome {
  outcome: "success" | "interrupted" | "error" | "cancelled";
  error?: unknown;
  values: unknown;
  interrupts: Record<string, Json>;
}

function errorEvent(err: unknown): { error: string; message: string } {
  const mapped = toHttpError(err);
  if (err instanceof ThreadlineError || mapped.status < 500 || !(err instanceof Error))
    return { error: mapped.body.error.code, message: mapped.body.error.message };
  // An exception raised by the user's graph is part of their application: show it as the Agent
  // Server does (name and message); Threadline's own failures were mapped above.
  return { error: err.name, message: err.message };
}

/**
 * `POST /threads/{id}/runs/stream`, `POST /threads/{id}/runs/wait`, and the stateless
 * `POST /runs/stream`, `POST /runs/wait` (a temporary thread, deleted afterwards unless
 * `on_completion: "keep"`). A run holds its thread (status `busy`, with a lease renewed while it
 * goes on); a second run on a busy thread is a 409 whatever its multitask_strategy.
 */
export function runRoutes(deps: AgentServerDeps): Router {
  const router = Router();
  const { threads, state, logger } = deps;

  async function prepare(
    req: Request,
    res: Response,
    threadParam: string | undefined,
  ): Promise<PreparedRun> {
    const body = parseBody(runBody, req.body);
    const graph = assistantOr404(deps, body.assistant_id);
    if (state.draining) throw new ThreadlineError("SHUTTING_DOWN", "the service is shutting down");
    const stateless = threadParam === undefined;
    const threadId = threadParam ?? randomUUID();
    const key = ownerHash(res);
    const metadata = { graph_id: graph.name, assistant_id: graph.assistantId };
    const existing = stateless ? undefined : await threads.get(threadId);
    if (!existing) {
      if (!stateless && body.if_not_exists !== "create")
        throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
      if (deps.owners && key !== undefined && !(await deps.owners.claim(threadId, key)))
        throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
      await threads.create({ threadId, metadata, ttlMinutes: null, ifExists: "do_nothing" });
    } else {
      await threadOr404(deps, res, threadId);
      if (existing.metadata.graph_id !== graph.name) await threads.patch(threadId, { metadata });
    }
    const runId = randomUUID();
    if (!(await threads.claimRun(threadId, runId)))
      throw new ThreadlineError("CONFLICT", `thread ${threadId} is busy with another run`);
    await threads.insertRun({
      threadId,
      runId,
      assistantId: graph.assistantId,
      metadata: (body.metadata ?? {}) as Record<string, Json>,
      kwargs: toJson({
        input: body.input ?? null,
        command: body.command ?? null,
        config: body.config ?? null,
        stream_mode: body.stream_mode ?? null,
      }) as Record<string, Json>,
      multitaskStrategy: body.multitask_strategy ?? "reject",
    });
    return { threadId, runId, graph, body, stateless };
  }

  async function execute(
    run: PreparedRun,
    streamModes: readonly StreamMode[],
    signal: AbortSignal,
    onEvent: (event: RunEvent) => Promise<void>,
  ): Promise<RunOutcome> {
    const { body, threadId, runId } = run;
    const started = process.hrtime.bigint();
    const lease = setInterval(() => {
      threads.renewLease(threadId, runId).catch((err: unknown) => {
        logger.warn({ err: describeError(err), threadId }, "renewing a run lease failed");
      });
    }, RUN_LEASE_MS / 3);
    lease.unref();
    const checkpointId = body.checkpoint?.checkpoint_id ?? body.checkpoint_id ?? undefined;
    const config: RunnableConfig = {
      configurable: {
        ...(body.config?.configurable ?? {}),
        thread_id: threadId,
        ...(checkpointId !== undefined ? { checkpoint_id: checkpointId } : {}),
        ...(body.checkpoint?.checkpoint_ns !== undefined
          ? { checkpoint_ns: body.checkpoint.checkpoint_ns }
          : {}),
      },
      metadata: {
        ...(body.config?.metadata ?? {}),
        ...(body.metadata ?? {}),
        run_id: runId,
        thread_id: threadId,
        graph_id: run.graph.name,
        assistant_id: run.graph.assistantId,
      },
      ...(body.config?.tags ? { tags: body.config.tags } : {}),
      ...(body.config?.recursion_limit ? { recursionLimit: body.config.recursion_limit } : {}),
    };
    let outcome: RunOutcome["outcome"] = "success";
    let error: unknown;
    let graph;
    try {
      graph = await run.graph.resolve(config);
      const input = body.command
        ? new Command({
            ...(body.command.resume !== undefined ? { resume: body.command.resume } : {}),
            ...(body.command.update !== undefined
              ? { update: body.command.update as Record<string, unknown> }
              : {}),
            ...(body.command.goto !== undefined ? { goto: body.command.goto as string } : {}),
          })
        : (body.input ?? null);
      for await (const event of streamRun({
        graph,
        input,
        config,
        streamMode: streamModes,
        subgraphs: body.stream_subgraphs === true,
        runId,
        signal,
        ...(body.context ? { context: body.context } : {}),
        ...(body.interrupt_before ? { interruptBefore: body.interrupt_before } : {}),
        ...(body.interrupt_after ? { interruptAfter: body.interrupt_after } : {}),
        ...(body.durability ? { durability: body.durability } : {}),
      })) {
        await onEvent(event);
      }
    } catch (err) {
      outcome = signal.aborted ? "cancelled" : "error";
      error = err;
    } finally {
      clearInterval(lease);
    }

    let snapshot: StateSnapshot | undefined;
    try {
      snapshot = graph
        ? await graph.getState({ configurable: { thread_id: threadId } })
        : undefined;
    } catch (err) {
      logger.warn({ err: describeError(err), threadId }, "reading the state after a run failed");
    }
    const interrupts = snapshot ? interruptsOf(snapshot) : {};
    if (outcome === "success" && Object.keys(interrupts).length > 0) outcome = "interrupted";
    const threadStatus: Exclude<ThreadStatus, "busy"> =
      outcome === "error" ? "error" : outcome === "interrupted" ? "interrupted" : "idle";
    try {
      await threads.finishRun(threadId, runId, {
        status: threadStatus,
        values: snapshot ? toJson(snapshot.values) : null,
        interrupts,
      });
      await threads.setRunStatus(
        threadId,
        runId,
        outcome === "error" ? "error" : outcome === "cancelled" ? "interrupted" : "success",
      );
      if (run.stateless && body.on_completion !== "keep") {
        await threads.delete(threadId);
        await deps.checkpointer.deleteThread(threadId);
      }
    } catch (err) {
      logger.warn({ err: describeError(err), threadId }, "recording the end of a run failed");
    }
    if (outcome === "error")
      logger.warn(
        { err: describeError(error), threadId, runId, graph: run.graph.name },
        "run failed",
      );
    const labels = { graph: run.graph.name, outcome };
    deps.metrics.runs.inc(labels);
    deps.metrics.runDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    return {
      outcome,
      ...(error !== undefined ? { error } : {}),
      values: snapshot?.values ?? null,
      interrupts,
    };
  }

  /** Registers the run with the service's shutdown (drain waits for it, abort cancels it). */
  function track(controller: AbortController): { done: () => void } {
    let resolve!: () => void;
    const active: ActiveStream = {
      abort: () =>
        controller.abort(new ThreadlineError("SHUTTING_DOWN", "the service is shutting down")),
      done: new Promise<void>((r) => (resolve = r)),
    };
    state.streams.add(active);
    return {
      done: () => {
        state.streams.delete(active);
        resolve();
      },
    };
  }

  function location(run: PreparedRun): string {
    return run.stateless ? `/runs/${run.runId}` : `/threads/${run.threadId}/runs/${run.runId}`;
  }

  async function stream(req: Request, res: Response, threadParam: string | undefined) {
    const run = await prepare(req, res, threadParam);
    const raw = run.body.stream_mode ?? ["values"];
    const modes = Array.isArray(raw) ? raw : [raw];
    const controller = new AbortController();
    const tracked = track(controller);
    let finished = false;
    res.status(200);
    res.setHeader("content-type", "text/event-stream; charset=utf-8");
    res.setHeader("cache-control", "no-cache");
    res.setHeader("connection", "keep-alive");
    res.setHeader("x-accel-buffering", "no");
    res.setHeader("content-location", location(run));
    res.flushHeaders();
    res.once("close", () => {
      if (!finished && run.body.on_disconnect !== "continue")
        controller.abort(new Error("client disconnected"));
    });
    let seq = 0;
    const write = async (event: RunEvent) => {
      if (res.writableEnded || res.destroyed) return;
      const text = `event: ${event.event}\ndata: ${serialize(event.data)}\nid: ${seq++}\n\n`;
      if (!res.write(text)) await Promise.race([once(res, "drain"), once(res, "close")]);
    };
    try {
      const result = await execute(run, modes, controller.signal, write);
      if (result.outcome === "error" || result.outcome === "cancelled")
        await write({ event: "error", data: errorEvent(result.error) });
    } finally {
      finished = true;
      if (!res.writableEnded) res.end();
      tracked.done();
    }
  }

  async function wait(req: Request, res: Response, threadParam: string | undefined) {
    const run = await prepare(req, res, threadParam);
    const controller = new AbortController();
    const tracked = track(controller);
    let finished = false;
    res.once("close", () => {
      if (!finished && run.body.on_disconnect !== "continue")
        controller.abort(new Error("client disconnected"));
    });
    try {
      const result = await execute(run, ["values"], controller.signal, () => Promise.resolve());
      finished = true;
      res.setHeader("content-location", location(run));
      if (result.outcome === "error" || result.outcome === "cancelled") {
        sendJson(res, 200, { __error__: errorEvent(result.error) });
        return;
      }
      const values = (result.values ?? {}) as Record<string, unknown>;
      const interrupts = Object.values(result.interrupts).flat();
      sendJson(res, 200, interrupts.length > 0 ? { ...values, __interrupt__: interrupts } : values);
    } finally {
      finished = true;
      tracked.done();
    }
  }

  router.post("/threads/:thread_id/runs/stream", (req, res) =>
    stream(req, res, param(req, "thread_id")),
  );
  router.post("/threads/:thread_id/runs/wait", (req, res) =>
    wait(req, res, param(req, "thread_id")),
  );
  router.post("/runs/stream", (req, res) => stream(req, res, undefined));
  router.post("/runs/wait", (req, res) => wait(req, res, undefined));

  return router;
}

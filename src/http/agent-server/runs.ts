import { once } from "node:events";
import { randomUUID } from "node:crypto";
import { Router, type Request, type Response } from "express";
import { z } from "zod";
import { ThreadlineError } from "../../errors.js";
import { publicRun, TERMINAL, type RunRow } from "../../runs/queue.js";
import { serialize, toJson } from "../../runs/serialize.js";
import { STREAM_MODES } from "../../runs/stream.js";
import type { Json } from "../../runs/threads.js";
import { tailRun, type LocalEnd, type RunKwargs } from "../../runs/worker.js";
import type { ActiveStream } from "../chat.js";
import {
  assistantOr404,
  ownerHash,
  param,
  parseBody,
  sendJson,
  sendJsonText,
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
  // Queued this long before a worker may claim it (at most a day).
  after_seconds: z.number().min(0).max(86_400).nullish(),
  webhook: z
    .string()
    .refine(isHttpUrl, "webhook must be an absolute http:// or https:// URL")
    .nullish(),
});

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}
type RunBody = z.output<typeof runBody>;

const RUN_STATUSES = ["pending", "running", "success", "error", "timeout", "interrupted"] as const;
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(10),
  offset: z.coerce.number().int().min(0).default(0),
  status: z.enum(RUN_STATUSES).optional(),
  select: z.unknown().optional(),
});
const flag = z
  .union([z.string(), z.boolean()])
  .optional()
  .transform((v) => v === true || v === "1" || v === "true");
const cancelQuery = z.object({
  wait: flag,
  action: z.enum(["interrupt", "rollback"]).default("interrupt"),
  reason: z.string().optional(),
});
const cancelManyBody = z.object({
  thread_id: z.string().min(1).nullish(),
  run_ids: z.array(z.string().uuid()).nullish(),
  status: z.enum(["pending", "running", "all"]).nullish(),
});
const uuid = z.string().uuid();

/** A run created here, on its thread. */
interface Created {
  run: RunRow;
  body: RunBody;
  stateless: boolean;
  /** The rollback base the create read with its claim (undefined: not read). */
  base?: string | null | undefined;
}

/** The value `join` and `runs.wait` answer: the thread's values, or `{ __error__ }`. */
async function finalValue(deps: AgentServerDeps, run: RunRow | undefined, threadId: string) {
  if (run?.status === "error") return { __error__: run.error ?? { error: "Error", message: "" } };
  const thread = await deps.threads.get(threadId);
  const values = (thread?.values ?? {}) as Record<string, unknown>;
  const interrupts = Object.values(thread?.interrupts ?? {}).flat();
  return interrupts.length > 0 ? { ...values, __interrupt__: interrupts } : values;
}

/**
 * The answer of `runs.wait` from a run's end, as JSON text: the values' text as the run stored
 * it when there is nothing to add (no second serialization of the state; decision H41).
 */
function endAnswer(end: LocalEnd): string {
  if (end.error !== undefined) return serialize({ __error__: end.error });
  if (end.status === "interrupted" && Object.keys(end.interrupts).length === 0)
    return serialize({ __error__: { error: "UserInterrupt", message: "the run was cancelled" } });
  const interrupts = Object.values(end.interrupts).flat();
  if (interrupts.length === 0) return end.valuesText === "null" ? "{}" : end.valuesText;
  const values = (JSON.parse(end.valuesText) ?? {}) as Record<string, unknown>;
  return serialize({ ...values, __interrupt__: interrupts });
}

/**
 * Runs of the Agent Server API on the queue in Postgres (src/runs/queue.ts): background runs
 * (`POST /threads/{id}/runs`, `/runs`, `/runs/batch`), list, get, delete, join, cancel, and the
 * streams (`POST .../runs/stream`, `GET .../runs/{run_id}/stream`, `GET /threads/{id}/stream`,
 * with `Last-Event-ID`), `runs/wait`. Every run goes through the queue: a streamed or waited
 * run is claimed by this instance at once when its thread is free, and any instance's stream
 * reads its events from Postgres, so a client can reconnect anywhere.
 */
export function runRoutes(deps: AgentServerDeps): Router {
  const router = Router();
  const { threads, state, runs } = deps;
  const { queue, notifier, worker } = runs;

  async function create(
    res: Response,
    body: RunBody,
    threadParam: string | undefined,
    executeHere = false,
  ): Promise<Created> {
    const graph = assistantOr404(deps, body.assistant_id);
    if (state.draining) throw new ThreadlineError("SHUTTING_DOWN", "the service is shutting down");
    const stateless = threadParam === undefined;
    const threadId = threadParam ?? randomUUID();
    const key = ownerHash(res);
    const metadata = { graph_id: graph.name, assistant_id: graph.assistantId };
    const rawModes = body.stream_mode ?? ["values"];
    const kwargs: RunKwargs = {
      input: body.input ?? null,
      command: body.command ?? null,
      config: body.config ?? null,
      context: body.context ?? null,
      metadata: body.metadata ?? null,
      stream_mode: Array.isArray(rawModes) ? rawModes : [rawModes],
      stream_subgraphs: body.stream_subgraphs ?? false,
      stream_resumable: body.stream_resumable ?? false,
      checkpoint: body.checkpoint ?? null,
      checkpoint_id: body.checkpoint_id ?? null,
      interrupt_before: body.interrupt_before ?? null,
      interrupt_after: body.interrupt_after ?? null,
      durability: body.durability ?? null,
      temporary: stateless && body.on_completion !== "keep",
      webhook: body.webhook ?? null,
    };
    const input = {
      threadId,
      runId: randomUUID(),
      assistantId: graph.assistantId,
      metadata: (body.metadata ?? {}) as Record<string, Json>,
      kwargs: toJson(kwargs) as Record<string, Json>,
      strategy: body.multitask_strategy ?? "reject",
    };
    // A stateless run executes where it was received even beyond runs.concurrency: its
    // temporary thread, and with it what `wait` answers, ends with the run.
    // A delayed run waits in the queue for its time, so it is never claimed here at once.
    const afterSeconds = body.after_seconds ?? 0;
    const claimBy = executeHere && afterSeconds === 0 ? worker.claimFor(stateless) : undefined;

    // The common case in one statement (decision H30): an existing thread of this graph, the
    // caller's, with nothing in flight. Anything else (a new thread, another graph, a busy
    // thread, a race) takes the path below, which reads the thread and applies the strategy.
    if (
      claimBy &&
      !stateless &&
      (!deps.owners || key === undefined || (await deps.owners.isOwner(threadId, key)))
    ) {
      const started = await queue.startOnFreeThread(input, claimBy, graph.name);
      if (started) return { run: started.run, body, stateless, base: started.base };
    }

    const existing = stateless ? undefined : await threads.get(threadId);
    if (!existing) {
      if (!stateless && body.if_not_exists !== "create")
        throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
      if (deps.owners && key !== undefined && !(await deps.owners.claim(threadId, key)))
        throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
      await threads.create({ threadId, metadata, ttlMinutes: null, ifExists: "do_nothing" });
    } else {
      // The thread was just read: only its owner is left to check (no second read).
      if (deps.owners && key !== undefined && !(await deps.owners.isOwner(threadId, key)))
        throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
      if (existing.metadata.graph_id !== graph.name) await threads.patch(threadId, { metadata });
    }
    const { run } = await queue.create({ ...input, claimBy, afterSeconds });
    return { run, body, stateless };
  }

  /**
   * Starts a streamed or waited run: the one `create` claimed for this worker executes here;
   * one that had to queue (its thread busy, this instance full) runs when a worker claims it,
   * here or on another instance.
   */
  function start(c: Created): void {
    if (c.run.status === "running") worker.adopt(c.run, c.base);
    else worker.kick();
  }

  function location(c: Created): string {
    return c.stateless
      ? `/runs/${c.run.run_id}`
      : `/threads/${c.run.thread_id}/runs/${c.run.run_id}`;
  }

  /** Registers a response with the shutdown (drain waits for it, abort ends it). */
  function track(controller: AbortController): () => void {
    let resolve!: () => void;
    const active: ActiveStream = {
      abort: () =>
        controller.abort(new ThreadlineError("SHUTTING_DOWN", "the service is shutting down")),
      done: new Promise<void>((r) => (resolve = r)),
    };
    state.streams.add(active);
    return () => {
      state.streams.delete(active);
      resolve();
    };
  }

  /** Waits until the run has ended (or is gone); returns its last row. */
  async function waitForEnd(
    threadId: string,
    runId: string,
    signal: AbortSignal,
  ): Promise<RunRow | undefined> {
    for (;;) {
      const wake = notifier.next(`run:${runId}`, runs.pollMs, signal);
      const run = await queue.get(threadId, runId);
      if (!run || TERMINAL.has(run.status) || signal.aborted) {
        wake.cancel();
        return run;
      }
      await wake.promise;
    }
  }

  /**
   * Sets the SSE headers; `flush` sends them at once. A run executing here has its first event
   * (`metadata`) in memory by the time the stream reads it, so its headers leave with that
   * event, in one socket write (decision H42); a run elsewhere or still queued may give no event
   * for a while, and its client gets the headers at once.
   */
  function openSse(
    res: Response,
    contentLocation?: string,
    resumeLocation?: string,
    flush = true,
  ): void {
    res.status(200);
    res.setHeader("content-type", "text/event-stream; charset=utf-8");
    res.setHeader("cache-control", "no-cache");
    res.setHeader("connection", "keep-alive");
    res.setHeader("x-accel-buffering", "no");
    if (contentLocation) res.setHeader("content-location", contentLocation);
    if (resumeLocation) res.setHeader("location", resumeLocation);
    if (flush) res.flushHeaders();
  }

  async function writeSse(res: Response, text: string): Promise<void> {
    if (res.writableEnded || res.destroyed) return;
    if (!res.write(text)) await Promise.race([once(res, "drain"), once(res, "close")]);
  }

  /**
   * Sends a run's stored events after `afterSeq` as SSE (`id:` = seq) until it ends. With
   * `cancelOnDisconnect`, a client that goes away before the end cancels the run.
   */
  async function pipeRun(
    res: Response,
    threadId: string,
    runId: string,
    afterSeq: number,
    cancelOnDisconnect: boolean,
  ): Promise<void> {
    const controller = new AbortController();
    const untrack = track(controller);
    let finished = false;
    res.once("close", () => {
      if (finished) return;
      controller.abort(new Error("client disconnected"));
      if (cancelOnDisconnect && !state.draining)
        queue.cancel(threadId, [runId], "interrupt").catch(() => undefined);
    });
    try {
      // A run executing here streams from memory; any other from Postgres.
      const local = worker.localRun(runId);
      const events = local
        ? local.tail(afterSeq, controller.signal)
        : tailRun({
            queue,
            notifier,
            threadId,
            runId,
            afterSeq,
            signal: controller.signal,
            pollMs: runs.pollMs,
          });
      for await (const e of events) {
        await writeSse(res, `event: ${e.event}\ndata: ${e.data}\nid: ${e.seq}\n\n`);
      }
    } finally {
      finished = true;
      if (!res.writableEnded) res.end();
      untrack();
    }
  }

  async function stream(req: Request, res: Response, threadParam: string | undefined) {
    const c = await create(res, parseBody(runBody, req.body), threadParam, true);
    start(c);
    const resumable = c.body.stream_resumable === true;
    openSse(
      res,
      location(c),
      resumable && !c.stateless ? `${location(c)}/stream` : undefined,
      worker.localRun(c.run.run_id) === undefined,
    );
    await pipeRun(res, c.run.thread_id, c.run.run_id, -1, c.body.on_disconnect !== "continue");
  }

  async function wait(req: Request, res: Response, threadParam: string | undefined) {
    const c = await create(res, parseBody(runBody, req.body), threadParam, true);
    start(c);
    const controller = new AbortController();
    const untrack = track(controller);
    let finished = false;
    res.once("close", () => {
      if (finished) return;
      controller.abort(new Error("client disconnected"));
      if (c.body.on_disconnect !== "continue" && !state.draining)
        queue.cancel(c.run.thread_id, [c.run.run_id], "interrupt").catch(() => undefined);
    });
    try {
      // A run executing here reports its end from memory (a temporary thread is deleted by
      // then); any other is read back from Postgres.
      const local = worker.localRun(c.run.run_id);
      let text = "null";
      if (local) {
        const end = await Promise.race([
          local.end,
          once(controller.signal, "abort").then(() => undefined),
        ]);
        if (end) text = endAnswer(end);
      } else {
        const ended = await waitForEnd(c.run.thread_id, c.run.run_id, controller.signal);
        if (!controller.signal.aborted)
          text = serialize(await finalValue(deps, ended, c.run.thread_id));
      }
      finished = true;
      if (controller.signal.aborted) return;
      res.setHeader("content-location", location(c));
      sendJsonText(res, 200, text);
    } finally {
      finished = true;
      untrack();
    }
  }

  async function background(req: Request, res: Response, threadParam: string | undefined) {
    const c = await create(res, parseBody(runBody, req.body), threadParam);
    worker.kick();
    res.setHeader("content-location", location(c));
    sendJson(res, 200, publicRun(c.run));
  }

  /** The thread (owner-checked) and the run, or 404. */
  async function runOr404(res: Response, threadId: string, runId: string): Promise<RunRow> {
    await threadOr404(deps, res, threadId);
    const run = uuid.safeParse(runId).success ? await queue.get(threadId, runId) : undefined;
    if (!run) throw new ThreadlineError("NOT_FOUND", `run ${runId} not found`);
    return run;
  }

  router.post("/threads/:thread_id/runs/stream", (req, res) =>
    stream(req, res, param(req, "thread_id")),
  );
  router.post("/threads/:thread_id/runs/wait", (req, res) =>
    wait(req, res, param(req, "thread_id")),
  );
  router.post("/runs/stream", (req, res) => stream(req, res, undefined));
  router.post("/runs/wait", (req, res) => wait(req, res, undefined));

  router.post("/threads/:thread_id/runs", (req, res) =>
    background(req, res, param(req, "thread_id")),
  );
  router.post("/runs", (req, res) => background(req, res, undefined));
  router.post("/runs/batch", async (req, res) => {
    const bodies = parseBody(z.array(runBody).min(1).max(1000), req.body);
    const created: Created[] = [];
    for (const body of bodies) created.push(await create(res, body, undefined));
    worker.kick();
    sendJson(
      res,
      200,
      created.map((c) => publicRun(c.run)),
    );
  });

  router.post("/runs/cancel", async (req, res) => {
    const body = parseBody(cancelManyBody, req.body);
    const { action } = parseBody(cancelQuery, req.query);
    let targets: Array<{ thread_id: string; run_id: string }>;
    if (body.run_ids && body.run_ids.length > 0) {
      if (!body.thread_id)
        throw new ThreadlineError("INVALID_INPUT", "thread_id: required with run_ids");
      await threadOr404(deps, res, body.thread_id);
      targets = body.run_ids.map((run_id) => ({ thread_id: body.thread_id!, run_id }));
    } else if (body.status) {
      if (body.thread_id) await threadOr404(deps, res, body.thread_id);
      else if (deps.owners && ownerHash(res) !== undefined)
        throw new ThreadlineError("INVALID_INPUT", "thread_id: required when API keys are on");
      targets = await queue.inflight(body.status, body.thread_id ?? undefined);
    } else {
      throw new ThreadlineError("INVALID_INPUT", "body: give run_ids (with thread_id) or status");
    }
    const byThread = new Map<string, string[]>();
    for (const t of targets)
      byThread.set(t.thread_id, [...(byThread.get(t.thread_id) ?? []), t.run_id]);
    for (const [threadId, ids] of byThread) await queue.cancel(threadId, ids, action);
    res.status(204).end();
  });

  router.get("/threads/:thread_id/runs", async (req, res) => {
    const threadId = param(req, "thread_id");
    await threadOr404(deps, res, threadId);
    const q = parseBody(listQuery, req.query);
    const list = await queue.list(threadId, {
      limit: q.limit,
      offset: q.offset,
      ...(q.status ? { status: q.status } : {}),
    });
    sendJson(res, 200, list.map(publicRun));
  });

  router.get("/threads/:thread_id/runs/:run_id", async (req, res) => {
    const run = await runOr404(res, param(req, "thread_id"), param(req, "run_id"));
    sendJson(res, 200, publicRun(run));
  });

  router.delete("/threads/:thread_id/runs/:run_id", async (req, res) => {
    const threadId = param(req, "thread_id");
    const runId = param(req, "run_id");
    await runOr404(res, threadId, runId);
    if (!(await queue.delete(threadId, runId)))
      throw new ThreadlineError("NOT_FOUND", `run ${runId} not found`);
    res.status(204).end();
  });

  router.get("/threads/:thread_id/runs/:run_id/join", async (req, res) => {
    const threadId = param(req, "thread_id");
    const run = await runOr404(res, threadId, param(req, "run_id"));
    const controller = new AbortController();
    const untrack = track(controller);
    res.once("close", () => controller.abort());
    try {
      const ended = await waitForEnd(threadId, run.run_id, controller.signal);
      if (controller.signal.aborted) return;
      sendJson(res, 200, await finalValue(deps, ended, threadId));
    } finally {
      untrack();
    }
  });

  router.post("/threads/:thread_id/runs/:run_id/cancel", async (req, res) => {
    const threadId = param(req, "thread_id");
    const run = await runOr404(res, threadId, param(req, "run_id"));
    const q = parseBody(cancelQuery, req.query);
    await queue.cancel(threadId, [run.run_id], q.action);
    if (q.wait) {
      const controller = new AbortController();
      const untrack = track(controller);
      res.once("close", () => controller.abort());
      try {
        await waitForEnd(threadId, run.run_id, controller.signal);
      } finally {
        untrack();
      }
    }
    res.status(q.wait ? 204 : 202).end();
  });

  router.get("/threads/:thread_id/runs/:run_id/stream", async (req, res) => {
    const threadId = param(req, "thread_id");
    const run = await runOr404(res, threadId, param(req, "run_id"));
    const last = lastEventSeq(req);
    const cancel = parseBody(cancelQuery.pick({ wait: true }), {
      wait: req.query.cancel_on_disconnect,
    }).wait;
    openSse(res, `/threads/${threadId}/runs/${run.run_id}`);
    await pipeRun(res, threadId, run.run_id, last ?? -1, cancel);
  });

  router.get("/threads/:thread_id/stream", async (req, res) => {
    const threadId = param(req, "thread_id");
    await threadOr404(deps, res, threadId);
    await pipeThread(req, res, threadId);
  });

  /**
   * `GET /threads/{id}/stream`: the events of the thread's runs as they run, one run after the
   * other, until the client leaves. Event ids are `<run_id>:<seq>`; with `Last-Event-ID` the
   * stream resumes after that event, then follows the runs started after that run.
   */
  async function pipeThread(req: Request, res: Response, threadId: string): Promise<void> {
    const controller = new AbortController();
    const untrack = track(controller);
    res.once("close", () => controller.abort());
    openSse(res);
    const header = req.header("last-event-id");
    const [lastRun, lastSeq] = header?.includes(":") ? header.split(":") : [undefined, undefined];
    try {
      let current: RunRow | undefined;
      let after = -1;
      if (lastRun && uuid.safeParse(lastRun).success) {
        current = await queue.get(threadId, lastRun);
        after = Number(lastSeq ?? -1);
      }
      current ??= await queue.current(threadId);
      let startedAt: string | null = current?.started_at ?? null;
      while (!controller.signal.aborted) {
        if (current) {
          for await (const e of tailRun({
            queue,
            notifier,
            threadId,
            runId: current.run_id,
            afterSeq: after,
            signal: controller.signal,
            pollMs: runs.pollMs,
          })) {
            await writeSse(
              res,
              `event: ${e.event}\ndata: ${e.data}\nid: ${current.run_id}:${e.seq}\n\n`,
            );
          }
          const latest = await queue.get(threadId, current.run_id);
          startedAt = latest?.started_at ?? startedAt;
          after = -1;
        }
        const wake = notifier.next(`thread:${threadId}`, runs.pollMs, controller.signal);
        const next = (await queue.startedAfter(threadId, startedAt))[0];
        if (next) {
          wake.cancel();
          current = next;
          continue;
        }
        current = undefined;
        await wake.promise;
      }
    } finally {
      if (!res.writableEnded) res.end();
      untrack();
    }
  }

  return router;
}

/** The seq of a run stream's `Last-Event-ID` header, if any. */
function lastEventSeq(req: Request): number | undefined {
  const raw = req.header("last-event-id");
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw.includes(":") ? raw.split(":")[1] : raw);
  return Number.isInteger(n) ? n : undefined;
}

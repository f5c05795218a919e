import type { RunnableConfig } from "@langchain/core/runnables";
import type { StateSnapshot } from "@langchain/langgraph";
import { Router } from "express";
import { z } from "zod";
import { ThreadlineError } from "../../errors.js";
import { checkpointOf, interruptsOf, threadState, toJson } from "../../runs/serialize.js";
import {
  graphOfThread,
  param,
  parseBody,
  sendJson,
  threadOr404,
  type AgentServerDeps,
} from "./common.js";

/** A checkpoint reference as clients send it (`checkpoint_ns`/`checkpoint_map` optional). */
export const checkpointRef = z.object({
  checkpoint_id: z.string().min(1).optional(),
  checkpoint_ns: z.string().optional(),
  checkpoint_map: z.record(z.string(), z.unknown()).nullable().optional(),
  thread_id: z.string().optional(),
});

const updateBody = z.object({
  values: z.unknown().optional(),
  as_node: z.string().min(1).optional(),
  checkpoint: checkpointRef.optional(),
  checkpoint_id: z.string().min(1).optional(),
});

/** `before` is a config (`{ configurable: { checkpoint_id } }`) or a bare checkpoint. */
const beforeRef = z.union([
  z.object({ configurable: checkpointRef }),
  checkpointRef,
  z.string().min(1),
]);

const historyBody = z.object({
  limit: z.number().int().min(1).max(1000).default(10),
  before: beforeRef.optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  checkpoint: checkpointRef.optional(),
});

const stateAtBody = z.object({
  checkpoint: checkpointRef,
  subgraphs: z.boolean().optional(),
});

/** An empty thread's state: what the Agent Server answers before the first run. */
function emptyState(): Record<string, unknown> {
  return {
    values: {},
    next: [],
    tasks: [],
    metadata: {},
    created_at: null,
    checkpoint: null,
    parent_checkpoint: null,
    interrupts: [],
  };
}

/** The LangGraph config reading `threadId` at a checkpoint (latest when none). */
export function stateConfig(
  threadId: string,
  checkpoint?: z.output<typeof checkpointRef>,
  checkpointId?: string,
): RunnableConfig {
  const id = checkpoint?.checkpoint_id ?? checkpointId;
  return {
    configurable: {
      thread_id: threadId,
      ...(checkpoint?.checkpoint_ns !== undefined
        ? { checkpoint_ns: checkpoint.checkpoint_ns }
        : {}),
      ...(id !== undefined ? { checkpoint_id: id } : {}),
      ...(checkpoint?.checkpoint_map ? { checkpoint_map: checkpoint.checkpoint_map } : {}),
    },
  };
}

function subgraphsFlag(raw: unknown): boolean {
  return raw === "true" || raw === "1";
}

/**
 * `GET /threads/{id}/state[/{checkpoint_id}]`, `POST /threads/{id}/state/checkpoint`,
 * `POST /threads/{id}/state` (update), `POST /threads/{id}/history`.
 */
export function stateRoutes(deps: AgentServerDeps): Router {
  const router = Router();

  async function readState(
    res: Parameters<typeof threadOr404>[1],
    threadId: string,
    config: RunnableConfig,
    subgraphs: boolean,
  ): Promise<Record<string, unknown>> {
    const thread = await threadOr404(deps, res, threadId);
    const graph = await graphOfThread(deps, thread).resolve(config);
    const snapshot = await graph.getState(config, { subgraphs });
    // No checkpoint: LangGraph answers an empty snapshot without metadata or creation time.
    if (snapshot.metadata === undefined && snapshot.createdAt === undefined) {
      if (config.configurable?.checkpoint_id !== undefined)
        throw new ThreadlineError("NOT_FOUND", `checkpoint not found in thread ${threadId}`);
      return emptyState();
    }
    return threadState(snapshot);
  }

  router.get("/threads/:thread_id/state", async (req, res) => {
    const threadId = param(req, "thread_id");
    sendJson(
      res,
      200,
      await readState(res, threadId, stateConfig(threadId), subgraphsFlag(req.query.subgraphs)),
    );
  });

  router.post("/threads/:thread_id/state/checkpoint", async (req, res) => {
    const threadId = param(req, "thread_id");
    const body = parseBody(stateAtBody, req.body);
    const config = stateConfig(threadId, body.checkpoint);
    sendJson(res, 200, await readState(res, threadId, config, body.subgraphs === true));
  });

  router.get("/threads/:thread_id/state/:checkpoint_id", async (req, res) => {
    const threadId = param(req, "thread_id");
    const config = stateConfig(threadId, undefined, param(req, "checkpoint_id"));
    sendJson(res, 200, await readState(res, threadId, config, subgraphsFlag(req.query.subgraphs)));
  });

  router.post("/threads/:thread_id/state", async (req, res) => {
    const threadId = param(req, "thread_id");
    const body = parseBody(updateBody, req.body);
    const thread = await threadOr404(deps, res, threadId);
    if (thread.status === "busy")
      throw new ThreadlineError("CONFLICT", `thread ${threadId} is busy with a run`);
    const entry = graphOfThread(deps, thread);
    const config = stateConfig(threadId, body.checkpoint, body.checkpoint_id);
    const graph = await entry.resolve(config);
    let next: RunnableConfig;
    try {
      next = await graph.updateState(config, body.values ?? null, body.as_node);
    } catch (err) {
      // LangGraph rejects an ambiguous or unknown as_node with a plain error: the caller's fault.
      if (err instanceof Error && /node|ambiguous|as_node|channel/i.test(err.message))
        throw new ThreadlineError("INVALID_INPUT", err.message, { cause: err });
      throw err;
    }
    const snapshot: StateSnapshot = await graph.getState({
      configurable: { thread_id: threadId },
    });
    const interrupts = interruptsOf(snapshot);
    await deps.threads.setValues(
      threadId,
      toJson(snapshot.values),
      Object.keys(interrupts).length > 0 ? "interrupted" : "idle",
    );
    // `checkpoint` is the Agent Server's answer; `configurable` is what the SDK's types declare.
    const ref = checkpointOf(next);
    sendJson(res, 200, { checkpoint: ref, configurable: ref });
  });

  router.post("/threads/:thread_id/history", async (req, res) => {
    const threadId = param(req, "thread_id");
    const body = parseBody(historyBody, req.body);
    const thread = await threadOr404(deps, res, threadId);
    const config = stateConfig(threadId, body.checkpoint);
    const graph = await graphOfThread(deps, thread).resolve(config);
    let before: RunnableConfig | undefined;
    if (typeof body.before === "string") before = stateConfig(threadId, undefined, body.before);
    else if (body.before && "configurable" in body.before)
      before = stateConfig(threadId, body.before.configurable);
    else if (body.before) before = stateConfig(threadId, body.before);
    const states: Record<string, unknown>[] = [];
    for await (const snapshot of graph.getStateHistory(config, {
      limit: body.limit,
      ...(before ? { before } : {}),
      ...(body.metadata ? { filter: body.metadata } : {}),
    })) {
      states.push(threadState(snapshot));
    }
    sendJson(res, 200, states);
  });

  return router;
}

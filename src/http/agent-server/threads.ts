import { randomUUID } from "node:crypto";
import type { CheckpointTuple } from "@langchain/langgraph-checkpoint";
import { Router } from "express";
import { z } from "zod";
import { ThreadlineError } from "../../errors.js";
import { THREAD_SORT_KEYS, type Json, type ThreadRecord } from "../../runs/threads.js";
import {
  ownerHash,
  param,
  parseBody,
  sendJson,
  threadOr404,
  type AgentServerDeps,
} from "./common.js";

const jsonObject = z.record(z.string(), z.unknown());
const status = z.enum(["idle", "busy", "interrupted", "error"]);

/** `ttl`: minutes, or the SDK's `{ ttl: minutes, strategy: "delete" }`. */
const ttl = z.union([
  z.number().positive(),
  z.object({ ttl: z.number().positive(), strategy: z.literal("delete").optional() }),
]);

function ttlMinutes(value: z.output<typeof ttl> | null | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  return typeof value === "number" ? value : value.ttl;
}

const createBody = z.object({
  thread_id: z.string().min(1).max(256).optional(),
  metadata: jsonObject.optional(),
  if_exists: z.enum(["raise", "do_nothing"]).default("raise"),
  ttl: ttl.optional(),
  supersteps: z.undefined({ message: "supersteps are not implemented" }).optional(),
});

const patchBody = z.object({
  metadata: jsonObject.optional(),
  ttl: ttl.nullable().optional(),
});

const searchBody = z.object({
  metadata: jsonObject.optional(),
  values: jsonObject.optional(),
  ids: z.array(z.string()).max(1000).optional(),
  status: status.optional(),
  limit: z.number().int().min(1).max(1000).default(10),
  offset: z.number().int().min(0).default(0),
  sort_by: z.enum(THREAD_SORT_KEYS).default("updated_at"),
  sort_order: z.enum(["asc", "desc"]).default("desc"),
  select: z.array(z.string()).optional(),
});

const countBody = searchBody.pick({ metadata: true, values: true, status: true });

/** A thread in the API's shape. */
export function threadJson(t: ThreadRecord): Record<string, unknown> {
  return {
    thread_id: t.thread_id,
    created_at: t.created_at,
    updated_at: t.updated_at,
    state_updated_at: t.updated_at,
    metadata: t.metadata,
    status: t.status,
    values: t.values ?? {},
    interrupts: t.interrupts,
    config: {},
    ...(t.ttl !== null ? { ttl: { strategy: "delete", ttl: t.ttl } } : {}),
  };
}

function select(thread: Record<string, unknown>, fields: readonly string[] | undefined) {
  if (!fields || fields.length === 0) return thread;
  return Object.fromEntries(Object.entries(thread).filter(([k]) => fields.includes(k)));
}

/**
 * `POST /threads`, `GET|PATCH|DELETE /threads/{id}`, `POST /threads/search`,
 * `POST /threads/count`, `POST /threads/{id}/copy`.
 */
export function threadRoutes(deps: AgentServerDeps): Router {
  const router = Router();

  /** Records the caller as owner of a new thread id; false when another key has it. */
  const claim = async (threadId: string, key: string | undefined): Promise<boolean> =>
    deps.owners && key !== undefined ? deps.owners.claim(threadId, key) : true;

  router.post("/threads", async (req, res) => {
    const body = parseBody(createBody, req.body);
    const threadId = body.thread_id ?? randomUUID();
    const key = ownerHash(res);
    if (!(await claim(threadId, key)))
      throw new ThreadlineError("CONFLICT", `thread ${threadId} already exists`);
    const metadata = { ...(body.metadata ?? {}) } as Record<string, Json>;
    const { thread } = await deps.threads.create({
      threadId,
      metadata,
      ttlMinutes: ttlMinutes(body.ttl) ?? null,
      ifExists: body.if_exists,
    });
    sendJson(res, 200, threadJson(thread));
  });

  router.post("/threads/search", async (req, res) => {
    const q = parseBody(searchBody, req.body);
    const key = ownerHash(res);
    const rows = await deps.threads.search({
      ...(q.metadata ? { metadata: q.metadata as Record<string, Json> } : {}),
      ...(q.values ? { values: q.values as Record<string, Json> } : {}),
      ...(q.ids ? { ids: q.ids } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(deps.owners && key !== undefined ? { ownerHash: key } : {}),
      limit: q.limit,
      offset: q.offset,
      sortBy: q.sort_by,
      sortOrder: q.sort_order,
    });
    sendJson(
      res,
      200,
      rows.map((t) => select(threadJson(t), q.select)),
    );
  });

  router.post("/threads/count", async (req, res) => {
    const q = parseBody(countBody, req.body);
    const key = ownerHash(res);
    const n = await deps.threads.count({
      ...(q.metadata ? { metadata: q.metadata as Record<string, Json> } : {}),
      ...(q.values ? { values: q.values as Record<string, Json> } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(deps.owners && key !== undefined ? { ownerHash: key } : {}),
    });
    sendJson(res, 200, n);
  });

  router.get("/threads/:thread_id", async (req, res) => {
    sendJson(res, 200, threadJson(await threadOr404(deps, res, param(req, "thread_id"))));
  });

  router.patch("/threads/:thread_id", async (req, res) => {
    const threadId = param(req, "thread_id");
    const body = parseBody(patchBody, req.body);
    await threadOr404(deps, res, threadId);
    const minutes = ttlMinutes(body.ttl);
    const updated = await deps.threads.patch(threadId, {
      ...(body.metadata ? { metadata: body.metadata as Record<string, Json> } : {}),
      ...(minutes !== undefined ? { ttlMinutes: minutes } : {}),
    });
    if (!updated) throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
    sendJson(res, 200, threadJson(updated));
  });

  router.delete("/threads/:thread_id", async (req, res) => {
    const threadId = param(req, "thread_id");
    await threadOr404(deps, res, threadId);
    const remove = async () => {
      await deps.threads.delete(threadId);
      // The rows are gone in one transaction; this drops what the saver stack caches for it.
      await deps.checkpointer.deleteThread(threadId);
    };
    const key = ownerHash(res);
    if (deps.owners && key !== undefined) {
      // Conditional on the owner row, so a concurrent claim by another key cannot be lost.
      if (!(await deps.owners.deleteOwned(threadId, key, remove)))
        throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
    } else await remove();
    res.status(204).end();
  });

  router.post("/threads/:thread_id/copy", async (req, res) => {
    const source = await threadOr404(deps, res, param(req, "thread_id"));
    const threadId = randomUUID();
    await claim(threadId, ownerHash(res));
    const { thread } = await deps.threads.create({
      threadId,
      metadata: source.metadata,
      ttlMinutes: source.ttl,
      ifExists: "raise",
    });
    await copyCheckpoints(deps, source.thread_id, threadId);
    await deps.threads.setValues(
      threadId,
      source.values,
      source.status === "busy" ? "idle" : source.status,
    );
    const copied = await deps.threads.get(threadId);
    sendJson(res, 200, threadJson(copied ?? thread));
  });

  return router;
}

/** Copies every checkpoint (all namespaces, oldest first) and its pending writes to a new thread. */
async function copyCheckpoints(deps: AgentServerDeps, from: string, to: string): Promise<void> {
  const tuples: CheckpointTuple[] = [];
  for await (const tuple of deps.checkpointer.list({ configurable: { thread_id: from } }))
    tuples.push(tuple);
  tuples.reverse();
  for (const tuple of tuples) {
    const ns = (tuple.config.configurable?.checkpoint_ns as string | undefined) ?? "";
    const parentId = tuple.parentConfig?.configurable?.checkpoint_id as string | undefined;
    const saved = await deps.checkpointer.put(
      {
        configurable: {
          thread_id: to,
          checkpoint_ns: ns,
          ...(parentId !== undefined ? { checkpoint_id: parentId } : {}),
        },
      },
      tuple.checkpoint,
      tuple.metadata ?? { source: "update", step: -1, parents: {} },
      tuple.checkpoint.channel_versions,
    );
    const byTask = new Map<string, [string, unknown][]>();
    for (const [taskId, channel, value] of tuple.pendingWrites ?? []) {
      const list = byTask.get(taskId) ?? [];
      list.push([channel, value]);
      byTask.set(taskId, list);
    }
    for (const [taskId, writes] of byTask) await deps.checkpointer.putWrites(saved, writes, taskId);
  }
}

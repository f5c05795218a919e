import { randomUUID } from "node:crypto";
import {
  HumanMessage,
  RemoveMessage,
  AIMessageChunk,
  type BaseMessage,
} from "@langchain/core/messages";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type { UIMessage } from "ai";
import express, { Router, type Request, type Response } from "express";
import type { z } from "zod";
import { MODEL_NODE, type ChatGraph } from "../graphs/chat/graph.js";
import { messageText } from "../graphs/chat/messages.js";
import { ThreadlineError } from "../errors.js";
import type { Logger } from "../logger.js";
import { principalOf } from "./auth.js";
import { describeError, toHttpError } from "./errors.js";
import type { ServiceMetrics } from "./metrics.js";
import type { ThreadOwners } from "./owners.js";
import {
  describeZodError,
  parseChatBody,
  threadIdSchema,
  uiMessageText,
  type ChatRequest,
} from "./schemas.js";
import type { ActiveStream, ServiceState } from "./service-state.js";
import { UIMessageStreamResponse } from "./sse.js";

// In a module of their own so that declarations needing them do not reach the AI SDK's types.
export type { ActiveStream, ServiceState } from "./service-state.js";

/** What the chat routes need. */
export interface ChatRoutesDeps {
  graph: ChatGraph;
  /** The graph's checkpointer, for deleting threads. */
  checkpointer: BaseCheckpointSaver;
  /** Present when API keys are configured: threads then belong to the key that created them. */
  owners?: ThreadOwners;
  state: ServiceState;
  metrics: ServiceMetrics;
  logger: Logger;
  /** Largest accepted JSON body (`server.bodyLimit`, e.g. "1mb"). */
  bodyLimit: string;
}

/** Where a user message's `metadata` is kept on the LangChain message (no provider sends it). */
const UI_METADATA_KEY = "ui_metadata";

type Outcome = "completed" | "error" | "client_aborted" | "shutdown_aborted";

/** Validates with zod and turns a failure into a 400 that names the fields, not their values. */
function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `invalid request: ${describeZodError(result.error)}`,
    );
  }
  return result.data;
}

const notFound = () => new ThreadlineError("NOT_FOUND", "chat not found");

/** The message list of a thread's latest state (empty for a new thread). */
function stateMessages(values: unknown): BaseMessage[] {
  const messages = (values as { messages?: unknown } | undefined)?.messages;
  return Array.isArray(messages) ? (messages as BaseMessage[]) : [];
}

/**
 * LangChain messages -> AI SDK `UIMessage`s for reloading a chat. Messages written without an id
 * (by other agents or imported) get a stable positional one.
 */
export function toUIMessages(messages: readonly BaseMessage[]): UIMessage[] {
  const out: UIMessage[] = [];
  messages.forEach((message, index) => {
    const type = message.getType();
    const role =
      type === "human"
        ? "user"
        : type === "ai"
          ? "assistant"
          : type === "system"
            ? "system"
            : undefined;
    if (role === undefined) return; // tool messages have no UI counterpart in a text chat
    const metadata: unknown = message.additional_kwargs?.[UI_METADATA_KEY];
    out.push({
      id: message.id ?? `msg-${index}`,
      role,
      ...(metadata !== undefined ? { metadata } : {}),
      parts: [{ type: "text", text: messageText(message) }],
    });
  });
  return out;
}

/**
 * The graph input for one new user message. Usually just the message; when its id is already in
 * the thread (AI SDK `regenerate()`, or editing an earlier message), the history from that message
 * on is replaced, as the client's view of the chat is.
 */
function turnInput(history: readonly BaseMessage[], request: ChatRequest): BaseMessage[] {
  const { message } = request;
  if (message.role !== "user") {
    throw new ThreadlineError("INVALID_INPUT", 'the new message must have role "user"');
  }
  const text = uiMessageText(message);
  if (text.trim() === "") {
    throw new ThreadlineError("INVALID_INPUT", "the new message has no text part");
  }
  const human = new HumanMessage({
    id: message.id,
    content: text,
    ...(message.metadata !== undefined
      ? { additional_kwargs: { [UI_METADATA_KEY]: message.metadata } }
      : {}),
  });
  const at = history.findIndex((m) => m.id === message.id);
  if (at === -1) return [human];
  if (history[at]!.getType() !== "human") {
    throw new ThreadlineError("INVALID_INPUT", "the message id belongs to an assistant message");
  }
  const removed = history
    .slice(at + 1)
    .flatMap((m) => (m.id ? [new RemoveMessage({ id: m.id })] : []));
  return [...removed, human];
}

/**
 * Serializes turns per thread within this process: a second message sent while a reply streams
 * waits for it, instead of both runs reading the same checkpoint and one overwriting the other.
 */
class ThreadLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async acquire(threadId: string): Promise<() => void> {
    const previous = this.tails.get(threadId) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(threadId, tail);
    await previous;
    return () => {
      release();
      if (this.tails.get(threadId) === tail) this.tails.delete(threadId);
    };
  }
}

/** `POST /api/chat`, `GET /api/chat/:id/messages`, `DELETE /api/chat/:id`. */
export function chatRoutes(deps: ChatRoutesDeps): Router {
  const { graph, checkpointer, owners, state, metrics, logger } = deps;
  const locks = new ThreadLocks();
  const router = Router();
  // Parsed inside the route, so a malformed body is counted under the route's metrics label.
  const json = express.json({ limit: deps.bodyLimit });

  /** Checks that the caller may see `threadId`: 404 (not 403) so ids of others stay unknown. */
  async function authorize(res: Response, threadId: string, claim: boolean): Promise<void> {
    const principal = principalOf(res.locals);
    if (!owners || !principal) return;
    const allowed = claim
      ? await owners.claim(threadId, principal.keyHash)
      : await owners.isOwner(threadId, principal.keyHash);
    if (!allowed) throw notFound();
  }

  router.post("/chat", json, async (req: Request, res: Response) => {
    const started = process.hrtime.bigint();
    if (state.draining) throw new ThreadlineError("SHUTTING_DOWN", "the service is shutting down");
    if (req.body === undefined && !req.is("application/json")) {
      throw new ThreadlineError(
        "INVALID_INPUT",
        "invalid request: body: send a JSON body with the header content-type: application/json",
      );
    }
    const parsed = parseChatBody(req.body);
    if (!parsed.ok)
      throw new ThreadlineError("INVALID_INPUT", `invalid request: ${parsed.problems}`);
    const { request } = parsed;
    const { threadId } = request;
    await authorize(res, threadId, true);

    const release = await locks.acquire(threadId);
    try {
      const config = { configurable: { thread_id: threadId } };
      const snapshot = await graph.getState(config);
      const input = turnInput(stateMessages(snapshot.values), request);
      await streamTurn(req, res, threadId, input, started);
    } finally {
      release();
    }
  });

  async function streamTurn(
    req: Request,
    res: Response,
    threadId: string,
    input: BaseMessage[],
    started: bigint,
  ): Promise<void> {
    const controller = new AbortController();
    const run: { outcome: Outcome } = { outcome: "completed" };
    let resolveDone!: () => void;
    const active: ActiveStream = {
      abort: () => {
        if (run.outcome === "completed") run.outcome = "shutdown_aborted";
        controller.abort(new ThreadlineError("SHUTTING_DOWN", "the service is shutting down"));
      },
      done: new Promise<void>((resolve) => (resolveDone = resolve)),
    };
    state.streams.add(active);
    metrics.activeStreams.inc();
    const stream = new UIMessageStreamResponse(res);
    res.once("close", () => {
      // The client went away before the reply ended (tab closed, `stop()`): cancel the run.
      if (!res.writableFinished) {
        if (run.outcome === "completed") run.outcome = "client_aborted";
        controller.abort(new Error("client disconnected"));
      }
    });

    const messageId = randomUUID();
    const textId = `text-${messageId}`;
    let textOpen = false;
    let streamedChunks = false;
    // The `start` chunk (and with it the 200) waits for the reply's first text, so a model that
    // fails before answering gets a 502 MODEL_ERROR instead of a 200 with an error chunk.
    const begin = async () => {
      if (!stream.started) await stream.send({ type: "start", messageId });
    };
    try {
      const events = await graph.stream(
        { messages: input },
        {
          configurable: { thread_id: threadId, assistantMessageId: messageId },
          streamMode: "messages",
          signal: controller.signal,
        },
      );
      for await (const [message, metadata] of events) {
        if ((metadata as { langgraph_node?: unknown }).langgraph_node !== MODEL_NODE) continue;
        // Tokens arrive as chunks; the node's final message repeats them, unless the model did
        // not stream at all, in which case it is the whole reply.
        const isChunk = AIMessageChunk.isInstance(message);
        if (!isChunk && streamedChunks) continue;
        if (isChunk) streamedChunks = true;
        const delta = messageText(message);
        if (delta === "") continue;
        await begin();
        if (!textOpen) {
          await stream.send({ type: "text-start", id: textId });
          textOpen = true;
        }
        await stream.send({ type: "text-delta", id: textId, delta });
      }
      await begin();
      if (textOpen) await stream.send({ type: "text-end", id: textId });
      await stream.send({ type: "finish", finishReason: "stop" });
    } catch (err) {
      if (run.outcome === "completed") run.outcome = "error";
      if (run.outcome === "error") {
        logger.error({ err: describeError(err), threadId }, "chat turn failed");
      } else {
        logger.info({ threadId, reason: run.outcome }, "chat turn cancelled");
      }
      if (!stream.started) {
        // Nothing was sent yet: answer with the error's status (502 MODEL_ERROR, 503, ...).
        if (run.outcome === "client_aborted") return;
        throw run.outcome === "shutdown_aborted"
          ? new ThreadlineError("SHUTTING_DOWN", "the service is shutting down")
          : err;
      }
      if (run.outcome !== "client_aborted") {
        const errorText =
          run.outcome === "shutdown_aborted"
            ? "the service is shutting down; retry"
            : toHttpError(err).body.error.message;
        await stream.send({ type: "error", errorText });
      }
    } finally {
      stream.end();
      state.streams.delete(active);
      metrics.activeStreams.dec();
      metrics.chatTurns.inc({ outcome: run.outcome });
      metrics.chatTurnDuration.observe(
        { outcome: run.outcome },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      resolveDone();
      void req;
    }
  }

  router.get("/chat/:id/messages", async (req: Request, res: Response) => {
    const threadId = parse(threadIdSchema, req.params.id);
    await authorize(res, threadId, false);
    const snapshot = await graph.getState({ configurable: { thread_id: threadId } });
    if (snapshot.createdAt === undefined) throw notFound();
    res.json({ id: threadId, messages: toUIMessages(stateMessages(snapshot.values)) });
  });

  router.delete("/chat/:id", async (req: Request, res: Response) => {
    const threadId = parse(threadIdSchema, req.params.id);
    const principal = principalOf(res.locals);
    const release = await locks.acquire(threadId);
    try {
      if (owners && principal) {
        // Only the owner deletes; an unknown id and another key's thread get the same 404, so
        // a DELETE cannot tell whether an id exists.
        const deleted = await owners.deleteOwned(threadId, principal.keyHash, () =>
          checkpointer.deleteThread(threadId),
        );
        if (!deleted) throw notFound();
      } else {
        await checkpointer.deleteThread(threadId);
      }
    } finally {
      release();
    }
    res.status(204).end();
  });

  return router;
}

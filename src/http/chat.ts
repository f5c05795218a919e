import { randomUUID } from "node:crypto";
import type { BaseMessage } from "@langchain/core/messages";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import express, { Router, type Request, type Response } from "express";
import type { z } from "zod";
import type { GraphRegistry, ServableGraph } from "../graphs/load.js";
import { ThreadlineError } from "../errors.js";
import type { Logger } from "../logger.js";
import { principalOf } from "./auth.js";
import { describeError, toHttpError } from "./errors.js";
import type { ServiceMetrics } from "./metrics.js";
import type { ThreadOwners } from "./owners.js";
import { CHAT_STREAM_MODES, ChatStreamTranslator } from "./chat-stream.js";
import { describeZodError, graphSelectorSchema, parseChatBody, threadIdSchema } from "./schemas.js";
import type { ActiveStream, ServiceState } from "./service-state.js";
import { UIMessageStreamResponse } from "./sse.js";
import type { TurnReadReuse } from "./turn-read.js";
import { stateMessages, toUIMessages, turnInput } from "./ui-messages.js";

// In a module of their own so that declarations needing them do not reach the AI SDK's types.
export type { ActiveStream, ServiceState } from "./service-state.js";
export { toUIMessages } from "./ui-messages.js";

/** What the chat routes need. */
export interface ChatRoutesDeps {
  /**
   * The graphs a chat may name (`graph` in the body, `?graph=` on reads); without a name, the
   * registry's default (`chat`). Any graph whose state has `messages` can answer.
   */
  graphs: GraphRegistry;
  /** The graph's checkpointer, for deleting threads. */
  checkpointer: BaseCheckpointSaver;
  /**
   * When the graphs' checkpointer is (or sits behind) this wrapper, a turn's graph reuses the
   * route's read of the thread instead of reading it again (decision H32).
   */
  turnReads?: TurnReadReuse;
  /** Present when API keys are configured: threads then belong to the key that created them. */
  owners?: ThreadOwners;
  state: ServiceState;
  metrics: ServiceMetrics;
  logger: Logger;
  /** Largest accepted JSON body (`server.bodyLimit`, e.g. "1mb"). */
  bodyLimit: string;
}

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
  const { graphs, checkpointer, owners, state, metrics, logger } = deps;
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
    // The graph first: a request for a graph not served claims nothing.
    const graph = await chatGraph(request.graph, threadId);
    await authorize(res, threadId, true);

    const release = await locks.acquire(threadId);
    const turn = async () => {
      const config = { configurable: { thread_id: threadId } };
      const snapshot = await graph.getState(config);
      const input = turnInput(stateMessages(snapshot.values), request);
      await streamTurn(req, res, graph, threadId, input, started);
    };
    try {
      await (deps.turnReads ? deps.turnReads.run(threadId, turn) : turn());
    } finally {
      release();
    }
  });

  /**
   * The graph a chat names (by graph name or assistant id; default `chat`), resolved for this
   * thread. 404 for a graph not served, 400 for one whose state has no `messages`.
   */
  async function chatGraph(selector: string | undefined, threadId: string): Promise<ServableGraph> {
    const name = selector ?? graphs.defaultName;
    const loaded = graphs.find(name);
    if (!loaded) {
      const served = graphs
        .list()
        .map((g) => g.name)
        .join(", ");
      throw new ThreadlineError("NOT_FOUND", `graph "${name}" is not served (served: ${served})`);
    }
    const graph = await loaded.resolve({ configurable: { thread_id: threadId } });
    if (!Object.hasOwn(graph.channels, "messages")) {
      throw new ThreadlineError(
        "INVALID_INPUT",
        `graph "${loaded.name}" has no "messages" in its state; /api/chat serves graphs whose state has messages (use the Agent Server API for others)`,
      );
    }
    return graph;
  }

  async function streamTurn(
    req: Request,
    res: Response,
    graph: ServableGraph,
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
    const translator = new ChatStreamTranslator(messageId);
    // The `start` chunk (and with it the 200) waits for the reply's first part, so a model that
    // fails before answering gets a 502 MODEL_ERROR instead of a 200 with an error chunk.
    const send = async (chunks: Parameters<typeof stream.send>[0][]) => {
      if (chunks.length === 0) return;
      if (!stream.started) await stream.send({ type: "start", messageId });
      for (const chunk of chunks) await stream.send(chunk);
    };
    try {
      const events = (await graph.stream(
        { messages: input },
        {
          // The built-in graph stores its reply under the id the client saw in `start`.
          configurable: { thread_id: threadId, assistantMessageId: messageId },
          streamMode: [...CHAT_STREAM_MODES],
          signal: controller.signal,
        },
      )) as AsyncIterable<[string, unknown]>;
      for await (const [mode, payload] of events) await send(translator.translate(mode, payload));
      await send([...translator.finish(), { type: "finish", finishReason: "stop" }]);
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
    const selector = parse(graphSelectorSchema, req.query.graph);
    await authorize(res, threadId, false);
    const graph = await chatGraph(selector, threadId);
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

import type { BaseMessageChunk } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { StreamEvent } from "@langchain/core/tracers/log_stream";
import { INTERRUPT } from "@langchain/langgraph";
import type { ServableGraph } from "../graphs/load.js";
import { checkpointOf, publicConfig } from "./serialize.js";

/** The `stream_mode`s of the Agent Server API. */
export const STREAM_MODES = [
  "values",
  "updates",
  "messages",
  "messages-tuple",
  "custom",
  "debug",
  "events",
  "checkpoints",
  "tasks",
] as const;
export type StreamMode = (typeof STREAM_MODES)[number];

/** Modes LangGraph's `stream()` produces itself. */
type LibMode = "values" | "updates" | "messages" | "custom" | "debug" | "checkpoints" | "tasks";

/** One SSE event of a run: `event: <event>` and `data: <json of data>`. */
export interface RunEvent {
  event: string;
  data: unknown;
}

/** What {@link streamRun} runs. */
export interface StreamRunOptions {
  graph: ServableGraph;
  /** The run's input, a `Command`, or null (continue from the checkpoint). */
  input: unknown;
  /** `configurable` carries thread_id (and checkpoint_id for a fork). */
  config: RunnableConfig;
  context?: Record<string, unknown>;
  streamMode: readonly StreamMode[];
  subgraphs: boolean;
  interruptBefore?: "*" | string[];
  interruptAfter?: "*" | string[];
  durability?: "sync" | "async" | "exit";
  runId: string;
  signal: AbortSignal;
  /**
   * Called with every `values` chunk of the root graph (whether or not `values` is a requested
   * mode: it is always asked of LangGraph), so the caller knows the run's final state without
   * reading it back (decision H41). `interrupt` is true for the `{ __interrupt__ }` chunk that
   * LangGraph emits when the run stops at an interrupt (dynamic or static).
   */
  onValues?: (payload: unknown, interrupt: boolean) => void;
}

function eventName(mode: string, ns: readonly string[], subgraphs: boolean): string {
  return subgraphs && ns.length > 0 ? `${mode}|${ns.join("|")}` : mode;
}

interface DebugCheckpointPayload {
  config?: RunnableConfig;
  parentConfig?: RunnableConfig;
  values?: unknown;
  metadata?: unknown;
  next?: unknown;
  tasks?: unknown;
}

/** A checkpoint payload (`checkpoints` mode, debug `checkpoint`) in the API's snake_case form. */
function checkpointPayload(p: DebugCheckpointPayload): Record<string, unknown> {
  return {
    config: publicConfig(p.config),
    parent_config: publicConfig(p.parentConfig),
    checkpoint: checkpointOf(p.config),
    parent_checkpoint: checkpointOf(p.parentConfig),
    values: p.values,
    metadata: p.metadata,
    next: p.next,
    tasks: p.tasks,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object";
}

/**
 * Runs a graph and yields the Agent Server's SSE events: first `metadata` (`run_id`, `attempt`),
 * then one event per chunk of every requested mode (`values`, `updates`, `messages` for
 * messages-tuple, `messages/metadata|partial|complete` for messages, `custom`, `debug`,
 * `events`, `checkpoints`, `tasks`; `mode|ns` for subgraph chunks). Chunks are yielded as the
 * graph produces them (tokens too). Errors propagate to the caller, which sends `error`.
 *
 * `events` and `messages` need LangChain's callback events, so those runs go through
 * `streamEvents` (v2); every other run uses the cheaper `stream()`.
 */
export async function* streamRun(options: StreamRunOptions): AsyncGenerator<RunEvent> {
  const wanted = new Set<StreamMode>(options.streamMode);
  const lib = new Set<LibMode>();
  for (const mode of wanted) {
    if (mode === "messages-tuple") lib.add("messages");
    else if (mode === "messages") lib.add("values");
    else if (mode !== "events") lib.add(mode);
  }
  // Always: the root's last values chunk is the run's final state (see onValues).
  lib.add("values");
  const subgraphs = options.subgraphs;
  const streamOptions = {
    ...options.config,
    streamMode: [...lib],
    subgraphs,
    runId: options.runId,
    signal: options.signal,
    ...(options.context !== undefined ? { context: options.context } : {}),
    ...(options.interruptBefore !== undefined ? { interruptBefore: options.interruptBefore } : {}),
    ...(options.interruptAfter !== undefined ? { interruptAfter: options.interruptAfter } : {}),
    ...(options.durability !== undefined ? { durability: options.durability } : {}),
  };

  yield { event: "metadata", data: { run_id: options.runId, attempt: 1 } };

  const completed = new Set<string>();
  const partial = new Map<string, BaseMessageChunk>();

  function* fromChunk(ns: readonly string[], mode: LibMode, payload: unknown): Generator<RunEvent> {
    if (mode === "values" && ns.length === 0 && options.onValues)
      options.onValues(payload, isObject(payload) && INTERRUPT in payload);
    if (mode === "messages") {
      if (wanted.has("messages-tuple"))
        yield { event: eventName("messages", ns, subgraphs), data: payload };
      return;
    }
    if (mode === "values" && wanted.has("messages") && isObject(payload)) {
      const list = payload.messages;
      const fresh = (Array.isArray(list) ? (list as unknown[]) : []).filter(
        (m): m is { id: string } => isObject(m) && typeof m.id === "string" && !completed.has(m.id),
      );
      for (const m of fresh) completed.add(m.id);
      if (fresh.length > 0) yield { event: "messages/complete", data: fresh };
    }
    if (!wanted.has(mode)) return;
    let data = payload;
    if (mode === "checkpoints" && isObject(payload)) data = checkpointPayload(payload);
    else if (mode === "debug" && isObject(payload) && payload.type === "checkpoint")
      data = { ...payload, payload: checkpointPayload(payload.payload as DebugCheckpointPayload) };
    yield { event: eventName(mode, ns, subgraphs), data };
  }

  const split = (chunk: unknown): [string[], LibMode, unknown] => {
    const tuple = chunk as unknown[];
    return subgraphs
      ? [tuple[0] as string[], tuple[1] as LibMode, tuple[2]]
      : [[], tuple[0] as LibMode, tuple[1]];
  };

  if (!wanted.has("events") && !wanted.has("messages")) {
    const stream = await options.graph.stream(options.input, streamOptions as never);
    for await (const chunk of stream as AsyncIterable<unknown>) {
      yield* fromChunk(...split(chunk));
    }
    return;
  }

  const events = options.graph.streamEvents(options.input, {
    ...streamOptions,
    version: "v2",
  } as never) as unknown as AsyncIterable<StreamEvent>;
  for await (const event of events) {
    if (event.tags?.includes("langsmith:hidden")) continue;
    if (event.event === "on_chain_stream" && event.run_id === options.runId) {
      yield* fromChunk(...split((event.data as { chunk: unknown }).chunk));
      continue;
    }
    if (wanted.has("events")) yield { event: "events", data: event };
    if (
      wanted.has("messages") &&
      event.event === "on_chat_model_stream" &&
      !event.tags?.includes("nostream")
    ) {
      const chunk = (event.data as { chunk?: BaseMessageChunk }).chunk;
      if (!chunk?.id) continue;
      const seen = partial.get(chunk.id);
      if (seen === undefined) {
        partial.set(chunk.id, chunk);
        yield { event: "messages/metadata", data: { [chunk.id]: { metadata: event.metadata } } };
      } else partial.set(chunk.id, seen.concat(chunk));
      yield { event: "messages/partial", data: [partial.get(chunk.id)] };
    }
  }
}

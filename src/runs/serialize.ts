import type { RunnableConfig } from "@langchain/core/runnables";
import type { StateSnapshot } from "@langchain/langgraph";
import type { Json } from "./threads.js";

/**
 * JSON text of a graph value in the Agent Server's wire form: LangChain messages become plain
 * dicts (`{ type: "human" | "ai" | "tool" | ..., content, id, ... }`, what the SDK and useStream
 * read), everything else goes through `JSON.stringify`; functions, signals and callbacks drop out.
 */
export function serialize(value: unknown): string {
  return JSON.stringify(value ?? null, function (this: unknown, key: string, replaced: unknown) {
    const raw = (this as Record<string, unknown>)[key];
    if (raw !== null && typeof raw === "object") {
      const maybe = raw as { toDict?: unknown; lc_serializable?: unknown };
      if (typeof maybe.toDict === "function") {
        const { type, data } = (maybe.toDict as () => { type: string; data: object })();
        return { ...data, type };
      }
      if (raw instanceof AbortSignal) return undefined;
    }
    return replaced;
  });
}

/** {@link serialize} back to a JSON value (for `jsonb` columns and nested payloads). */
export function toJson(value: unknown): Json {
  return JSON.parse(serialize(value)) as Json;
}

/** A checkpoint reference in the API's shape. */
export interface CheckpointRef {
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
  checkpoint_map: Record<string, unknown> | null;
}

/** The checkpoint a LangGraph config points at, or null. */
export function checkpointOf(config: RunnableConfig | undefined | null): CheckpointRef | null {
  const c = config?.configurable;
  if (!c || typeof c.thread_id !== "string" || typeof c.checkpoint_id !== "string") return null;
  return {
    thread_id: c.thread_id,
    checkpoint_ns: typeof c.checkpoint_ns === "string" ? c.checkpoint_ns : "",
    checkpoint_id: c.checkpoint_id,
    checkpoint_map:
      c.checkpoint_map !== null && typeof c.checkpoint_map === "object"
        ? (c.checkpoint_map as Record<string, unknown>)
        : null,
  };
}

/** A config without the engine's internals (`__pregel_*` keys, callbacks, signals). */
export function publicConfig(config: RunnableConfig | undefined | null): Json {
  if (!config) return null;
  const configurable = Object.fromEntries(
    Object.entries(config.configurable ?? {}).filter(([k]) => !k.startsWith("__")),
  );
  return toJson({
    configurable,
    ...(config.metadata ? { metadata: config.metadata } : {}),
    ...(config.tags ? { tags: config.tags } : {}),
  });
}

function errorText(error: unknown): string | null {
  if (error === undefined || error === null) return null;
  if (error instanceof Error) return error.message;
  return typeof error === "string" ? error : JSON.stringify(error);
}

/** A thread state (`GET /threads/{id}/state`, history entries) from a LangGraph snapshot. */
export function threadState(snapshot: StateSnapshot): Record<string, unknown> {
  return {
    values: snapshot.values,
    next: snapshot.next,
    tasks: snapshot.tasks.map((task) => {
      const state = task.state as StateSnapshot | RunnableConfig | undefined;
      const isSnapshot = state !== undefined && "values" in state && "next" in state;
      return {
        id: task.id,
        name: task.name,
        path: task.path,
        error: errorText(task.error),
        interrupts: task.interrupts,
        checkpoint: state !== undefined && !isSnapshot ? checkpointOf(state) : null,
        state: isSnapshot ? threadState(state) : null,
        result: task.result ?? null,
      };
    }),
    metadata: snapshot.metadata ?? {},
    created_at: snapshot.createdAt ?? null,
    checkpoint: checkpointOf(snapshot.config),
    parent_checkpoint: checkpointOf(snapshot.parentConfig),
    interrupts: snapshot.tasks.flatMap((t) => t.interrupts),
  };
}

/** The interrupts of a snapshot by task id (a thread's `interrupts`). */
export function interruptsOf(snapshot: StateSnapshot): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const task of snapshot.tasks) {
    if (task.interrupts.length > 0) out[task.id] = toJson(task.interrupts);
  }
  return out;
}

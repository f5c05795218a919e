import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";
import { ThreadlineError } from "../errors.js";
import type { ThreadPlan } from "./assemble.js";
import { EMPTY } from "./types.js";
import { stripNul } from "./values.js";

/** A thread's rows as the checkpoint tables store them. */
export interface ThreadRows {
  threadId: string;
  formats: string[];
  createdAt: string | null;
  lastActivity: string | null;
  fingerprint: string;
  checkpoints: Array<{
    ns: string;
    id: string;
    parentId: string | null;
    checkpoint: string;
    metadata: string;
  }>;
  /** `blob`: the bytes, or JSON text standing for its UTF-8 bytes (written as such by COPY). */
  blobs: Array<{
    ns: string;
    channel: string;
    version: string;
    type: string;
    blob: Uint8Array | string | null;
  }>;
  writes: Array<{
    ns: string;
    checkpointId: string;
    taskId: string;
    taskPath: string;
    idx: number;
    channel: string;
    type: string;
    blob: Uint8Array | string;
  }>;
  /** Approximate payload size, to bound batches by bytes as well as by threads. */
  bytes: number;
}

/** Message classes `@langchain/core` `load()` revives from `["langchain_core","messages",X]`. */
const CORE_MESSAGES = new Set([
  "HumanMessage",
  "HumanMessageChunk",
  "AIMessage",
  "AIMessageChunk",
  "ToolMessage",
  "ToolMessageChunk",
  "SystemMessage",
  "SystemMessageChunk",
  "ChatMessage",
  "ChatMessageChunk",
  "FunctionMessage",
  "FunctionMessageChunk",
  "RemoveMessage",
]);

/**
 * True when a normalised value is plain JSON whose only LangChain records are core messages:
 * JSON text of it is exactly what the JS serializer writes for its revived form (its replacer
 * only changes non-JSON values), so reviving and re-dumping it would only cost time.
 */
function isPlainJson(value: unknown): boolean {
  if (value === null || typeof value !== "object")
    return typeof value !== "undefined" && typeof value !== "bigint";
  // Loops rather than every() / Object.values(): this walks every value an import writes.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i])) return false;
    return true;
  }
  const o = value as Record<string, unknown>;
  if ("lc" in o) {
    const id = o.id;
    if (
      o.lc !== 1 ||
      o.type !== "constructor" ||
      !Array.isArray(id) ||
      id.length !== 3 ||
      id[0] !== "langchain_core" ||
      id[1] !== "messages" ||
      !CORE_MESSAGES.has(String(id[2]))
    ) {
      return false;
    }
  }
  // for-in visits inherited enumerable keys too (plain objects have none); one more key can only
  // send a value down the revive path, never skip a check.
  for (const k in o) if (!isPlainJson(o[k])) return false;
  return true;
}

/**
 * Serializes a planned thread for the checkpointer's serializer. Plain JSON whose LangChain
 * records are all core messages is written as its JSON text (what `dumpsTyped` produces for
 * it). Anything else is first revived exactly as the checkpointer will revive it when reading
 * (`loadsTyped`), so a value LangGraph JS cannot load (an unknown LangChain namespace, say)
 * rejects the thread here rather than breaking the agent later, and stored as
 * `dumpsTyped(revived)`, the bytes a JS `put` of that state would have written.
 */
export async function serializeThread(
  plan: ThreadPlan,
  serde: SerializerProtocol,
): Promise<ThreadRows> {
  const dump = async (value: unknown, what: string): Promise<[string, Uint8Array | string]> => {
    // The JSON text itself: the COPY encoder writes its UTF-8 bytes straight into its chunk (a
    // Buffer.from here was a second allocation and copy of every value; decision I13).
    if (isPlainJson(value)) return ["json", JSON.stringify(value)];
    let revived: unknown;
    try {
      revived = await serde.loadsTyped("json", JSON.stringify(value) ?? "null");
    } catch (err) {
      throw new ThreadlineError(
        "IMPORT_RECORD_INVALID",
        `${what} cannot be loaded by LangGraph JS: ${(err as Error).message}`,
        {
          details: { threadId: plan.threadId },
        },
      );
    }
    return serde.dumpsTyped(revived);
  };
  let size = 0;
  const blobs: ThreadRows["blobs"] = [];
  for (const b of plan.blobs) {
    if (b.value === EMPTY) {
      blobs.push({
        ns: b.ns,
        channel: b.channel,
        version: String(b.version),
        type: "empty",
        blob: null,
      });
      continue;
    }
    const [type, blob] = await dump(b.value, `channel ${b.channel}`);
    size += typeof blob === "string" ? blob.length : blob.byteLength;
    blobs.push({ ns: b.ns, channel: b.channel, version: String(b.version), type, blob });
  }
  const writes: ThreadRows["writes"] = [];
  for (const w of plan.writes) {
    const [type, blob] = await dump(w.value, `write to ${w.channel}`);
    size += typeof blob === "string" ? blob.length : blob.byteLength;
    writes.push({ ...w, type, blob });
  }
  const checkpoints = plan.checkpoints.map((c) => {
    // A NUL in any string or key shows in the JSON text as \u0000 (JSON.stringify escapes every
    // control character); only then is the checkpoint walked to remove it (jsonb rejects NUL).
    let checkpoint = JSON.stringify(c.checkpoint);
    if (checkpoint.includes("\\u0000")) checkpoint = JSON.stringify(stripNul(c.checkpoint));
    const metadata = JSON.stringify(c.metadata);
    size += checkpoint.length + metadata.length;
    return { ns: c.ns, id: c.id, parentId: c.parentId, checkpoint, metadata };
  });
  return {
    threadId: plan.threadId,
    formats: plan.formats,
    createdAt: plan.createdAt,
    lastActivity: plan.lastActivity,
    fingerprint: plan.fingerprint,
    checkpoints,
    blobs,
    writes,
    bytes: size,
  };
}

import { randomBytes } from "node:crypto";
import { encode, ExtData } from "@msgpack/msgpack";
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { END, MemorySaver, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { Redis } from "ioredis";
import { TEST_REDIS_URL } from "../../helpers/db.js";

/**
 * Builds source data for every supported Redis layout from real LangGraph runs: a conversation
 * runs against MemorySaver, and each of its checkpoints and pending writes is then written in
 * the exact documents and keys of a Redis saver (README, "Formats"). RedisJSON documents are
 * stored as STRING values, which is what the importer reads on a plain Redis without modules.
 */

/** The private Redis db the importer tests use; keys also carry a per-file token. */
export const TEST_REDIS_DB = 9;

/** A client on the test db; fails loudly when Redis is down (CI must never skip). */
export async function connectRedis(): Promise<Redis> {
  const redis = new Redis(TEST_REDIS_URL, {
    db: TEST_REDIS_DB,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new Error(
      `Redis is required at ${TEST_REDIS_URL} (start it: redis-server --daemonize yes): ${(err as Error).message}`,
    );
  }
  return redis;
}

/** A token to put in every thread id of one test file, so `--match *token*` isolates it. */
export function uniqueToken(prefix: string): string {
  return `${prefix}${randomBytes(4).toString("hex")}`;
}

/** Deletes every key containing `token` (SCAN + DEL, test db only). */
export async function deleteKeys(redis: Redis, token: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `*${token}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}

// ---------------------------------------------------------------------------------------------
// The conversation graph: an agent that calls a weather tool when asked about the weather and
// otherwise answers "turn N", N counting the human messages it sees (so memory is observable).

function agent(state: typeof MessagesAnnotation.State) {
  const last = state.messages[state.messages.length - 1]!;
  const turns = state.messages.filter((m) => m.getType() === "human").length;
  if (
    last.getType() === "human" &&
    typeof last.content === "string" &&
    last.content.includes("weather")
  ) {
    return {
      messages: [
        new AIMessage({
          content: "",
          id: `ai-tc-${turns}`,
          tool_calls: [
            { id: `call_${turns}`, name: "get_weather", args: { city: "sf" }, type: "tool_call" },
          ],
        }),
      ],
    };
  }
  return { messages: [new AIMessage({ content: `turn ${turns}`, id: `ai-${turns}` })] };
}

function tools(state: typeof MessagesAnnotation.State) {
  const last = state.messages[state.messages.length - 1] as AIMessage;
  const call = last.tool_calls?.[0];
  return {
    messages: [
      new ToolMessage({
        content: "72F",
        tool_call_id: call?.id ?? "call",
        name: "get_weather",
        id: `tool-${call?.id}`,
      }),
    ],
  };
}

/** The chat graph compiled with a checkpointer. */
export function chatGraph(checkpointer: BaseCheckpointSaver) {
  return new StateGraph(MessagesAnnotation)
    .addNode("agent", agent)
    .addNode("tools", tools)
    .addEdge(START, "agent")
    .addConditionalEdges(
      "agent",
      (s) => ((s.messages[s.messages.length - 1] as AIMessage).tool_calls?.length ? "tools" : END),
      ["tools", END],
    )
    .addEdge("tools", "agent")
    .compile({ checkpointer });
}

/** One recorded checkpoint, values as plain JSON (what the JS savers' JSON.stringify produces). */
export interface RecordedCheckpoint {
  id: string;
  parentId: string | null;
  ts: string;
  v: number;
  channelValues: Record<string, unknown>;
  channelVersions: Record<string, number>;
  versionsSeen: Record<string, Record<string, number>>;
  /** Channels whose version changed at this checkpoint (what JS `put` receives as newVersions). */
  changed: string[];
  metadata: Record<string, unknown>;
  writes: Array<{ taskId: string; idx: number; channel: string; value: unknown }>;
}

/** A recorded conversation: its checkpoints oldest first and the final messages. */
export interface Conversation {
  threadId: string;
  checkpoints: RecordedCheckpoint[];
  messages: BaseMessage[];
}

const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v ?? null));

/** Runs `inputs` as turns of one thread against MemorySaver and records every checkpoint. */
export async function recordConversation(
  threadId: string,
  inputs: string[],
): Promise<Conversation> {
  const saver = new MemorySaver();
  const graph = chatGraph(saver);
  const config = { configurable: { thread_id: threadId } };
  for (const text of inputs)
    await graph.invoke(
      { messages: [new HumanMessage({ content: text, id: `h-${text}` })] },
      config,
    );
  const tuples = [];
  for await (const t of saver.list(config)) tuples.push(t);
  tuples.reverse();
  const checkpoints: RecordedCheckpoint[] = [];
  let prev: Record<string, number> = {};
  for (const t of tuples) {
    const cp = t.checkpoint;
    const versions = cp.channel_versions as Record<string, number>;
    const values: Record<string, unknown> = {};
    for (const ch of Object.keys(versions))
      if (ch in cp.channel_values) values[ch] = json(cp.channel_values[ch]);
    const taskIdx = new Map<string, number>();
    checkpoints.push({
      id: cp.id,
      parentId: (t.parentConfig?.configurable?.checkpoint_id as string | undefined) ?? null,
      ts: cp.ts,
      v: cp.v,
      channelValues: values,
      channelVersions: versions,
      versionsSeen: cp.versions_seen as Record<string, Record<string, number>>,
      changed: Object.keys(versions).filter((ch) => prev[ch] !== versions[ch]),
      metadata: json(t.metadata) as Record<string, unknown>,
      writes: (t.pendingWrites ?? []).map(([taskId, channel, value]) => {
        const idx = taskIdx.get(taskId) ?? 0;
        taskIdx.set(taskId, idx + 1);
        return { taskId, idx, channel, value: json(value) };
      }),
    });
    prev = versions;
  }
  const state = await graph.getState(config);
  return {
    threadId,
    checkpoints,
    messages: (state.values as typeof MessagesAnnotation.State).messages,
  };
}

// ---------------------------------------------------------------------------------------------
// Python-side conversions.

const PY_TYPES: Record<string, string> = {
  HumanMessage: "human",
  AIMessage: "ai",
  ToolMessage: "tool",
  SystemMessage: "system",
};

/** JS lc JSON -> what Python's serializer writes: `["langchain","schema","messages",X]` ids. */
export function toPythonJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPythonJson);
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (
      o.lc === 1 &&
      o.type === "constructor" &&
      Array.isArray(o.id) &&
      o.id[0] === "langchain_core"
    ) {
      const name = String(o.id[o.id.length - 1]);
      return {
        lc: 1,
        type: "constructor",
        id: ["langchain", "schema", "messages", name],
        kwargs: { ...(toPythonJson(o.kwargs) as object), type: PY_TYPES[name] ?? "ai" },
      };
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toPythonJson(v)]));
  }
  return value;
}

/** Python's `f"{n:032}.{random()}"` channel version (deterministic per n here). */
export function pyVersion(n: number): string {
  return `${String(n).padStart(32, "0")}.${((n * 7919) % 9973) / 9973}`;
}

function pyVersions(v: Record<string, number>): Record<string, string> {
  return Object.fromEntries(Object.entries(v).map(([k, n]) => [k, pyVersion(n)]));
}

function pySeen(
  seen: Record<string, Record<string, number>>,
): Record<string, Record<string, string>> {
  return Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, pyVersions(v)]));
}

/** Python JSON text (`json.dumps` style separators). */
function pyDumps(value: unknown): string {
  return JSON.stringify(value).replace(/","/g, '", "').replace(/":/g, '": ');
}

/** Python jsonplus msgpack: messages as ext 5 `(module, name, model_dump, method)`. */
export function toPythonMsgpack(value: unknown): Uint8Array {
  const convert = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(convert);
    if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (o.lc === 1 && o.type === "constructor" && Array.isArray(o.id)) {
        const name = String(o.id[o.id.length - 1]);
        const kind = PY_TYPES[name] ?? "ai";
        const dump = { ...(convert(o.kwargs) as object), type: kind, name: null, example: false };
        return new ExtData(
          5,
          encode([
            `langchain_core.messages.${kind === "ai" ? "ai" : kind}`,
            name,
            dump,
            "model_validate_json",
          ]),
        );
      }
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, convert(x)]));
    }
    return v;
  };
  return encode(convert(value));
}

const ZERO = "00000000-0000-0000-0000-000000000000";

/** Comma-separated decimal bytes, as checkpoint-redis stored `Uint8Array`s through ioredis. */
function commaBytes(text: string): string {
  return Array.from(Buffer.from(text, "utf8")).join(",");
}

// ---------------------------------------------------------------------------------------------
// Writers, one per layout. Each returns the number of keys written.

export type FixtureFormat =
  | "js"
  | "js-legacy"
  | "js-shallow"
  | "python"
  | "python-0.1"
  | "python-shallow"
  | "python-0.0"
  | "howto-colon"
  | "howto-dollar"
  | "checkpoint-redis";

export const FIXTURE_FORMATS: FixtureFormat[] = [
  "python",
  "python-0.1",
  "python-shallow",
  "js",
  "js-legacy",
  "js-shallow",
  "python-0.0",
  "howto-colon",
  "howto-dollar",
  "checkpoint-redis",
];

type Cmd =
  | { kind: "set"; key: string; value: string }
  | { kind: "hset"; key: string; fields: Record<string, string | Buffer> };

function jsDocs(conv: Conversation, withBlobs: boolean): Cmd[] {
  const t = conv.threadId;
  const cmds: Cmd[] = [];
  for (const cp of conv.checkpoints) {
    const inline = Object.fromEntries(
      cp.changed.filter((c) => c in cp.channelValues).map((c) => [c, cp.channelValues[c]]),
    );
    cmds.push({
      kind: "set",
      key: `checkpoint:${t}::${cp.id}`,
      value: JSON.stringify({
        thread_id: t,
        checkpoint_ns: "__empty__",
        checkpoint_id: cp.id,
        parent_checkpoint_id: cp.parentId,
        checkpoint: {
          v: cp.v,
          id: cp.id,
          ts: cp.ts,
          channel_values: inline,
          channel_versions: cp.channelVersions,
          versions_seen: cp.versionsSeen,
        },
        metadata: cp.metadata,
        checkpoint_ts: Date.parse(cp.ts),
        has_writes: cp.writes.length > 0 ? "true" : "false",
        source: cp.metadata.source,
        step: cp.metadata.step,
      }),
    });
    if (withBlobs) {
      for (const ch of Object.keys(inline)) {
        cmds.push({
          kind: "set",
          key: `checkpoint_blob:${t}::${ch}:${cp.channelVersions[ch]}`,
          value: JSON.stringify({
            thread_id: t,
            checkpoint_ns: "__empty__",
            checkpoint_id: cp.id,
            channel: ch,
            version: String(cp.channelVersions[ch]),
            type: "json",
            value: inline[ch],
          }),
        });
      }
    }
    for (const w of cp.writes) {
      cmds.push({
        kind: "set",
        key: `checkpoint_write:${t}::${cp.id}:${w.taskId}:${w.idx}`,
        value: JSON.stringify({
          thread_id: t,
          checkpoint_ns: "",
          checkpoint_id: cp.id,
          task_id: w.taskId,
          idx: w.idx,
          channel: w.channel,
          type: "json",
          value: w.value,
          timestamp: 1000 + w.idx,
          global_idx: 1001 + w.idx,
        }),
      });
    }
  }
  return cmds;
}

function jsShallow(conv: Conversation): Cmd[] {
  const cp = conv.checkpoints[conv.checkpoints.length - 1]!;
  const t = conv.threadId;
  return [
    {
      kind: "set",
      key: `checkpoint:${t}::shallow`,
      value: JSON.stringify({
        thread_id: t,
        checkpoint_ns: "",
        checkpoint_id: cp.id,
        parent_checkpoint_id: cp.parentId,
        checkpoint: {
          v: cp.v,
          id: cp.id,
          ts: cp.ts,
          channel_values: cp.channelValues,
          channel_versions: cp.channelVersions,
          versions_seen: cp.versionsSeen,
        },
        metadata: cp.metadata,
        checkpoint_ts: Date.parse(cp.ts),
        has_writes: "false",
      }),
    },
  ];
}

function pyCheckpoint(
  cp: RecordedCheckpoint,
  values: Record<string, unknown>,
): Record<string, unknown> {
  return {
    type: "json",
    v: cp.v,
    ts: cp.ts.replace("Z", "000+00:00"),
    id: cp.id,
    channel_values: toPythonJson(values),
    channel_versions: pyVersions(cp.channelVersions),
    versions_seen: pySeen(cp.versionsSeen),
    updated_channels: cp.changed,
    pending_sends: [],
  };
}

function pyWriteDoc(
  t: string,
  ns: string,
  cp: RecordedCheckpoint,
  w: RecordedCheckpoint["writes"][number],
  base64: boolean,
) {
  const text = pyDumps(toPythonJson(w.value));
  return {
    thread_id: t,
    checkpoint_ns: ns,
    checkpoint_id: cp.id,
    task_id: w.taskId,
    task_path: "",
    idx: w.idx,
    channel: w.channel,
    type: w.value === null ? "null" : "json",
    blob: w.value === null ? "" : base64 ? Buffer.from(text).toString("base64") : text,
  };
}

function python(conv: Conversation, base64: boolean): Cmd[] {
  const t = conv.threadId;
  const cmds: Cmd[] = [];
  for (const cp of conv.checkpoints) {
    const key = `checkpoint:${t}:__empty__:${cp.id}`;
    cmds.push({
      kind: "set",
      key,
      value: JSON.stringify({
        thread_id: t,
        ...(base64 ? { run_id: "1f06f4a0-1c20-6a00-8000-aaaaaaaaaaaa" } : {}),
        checkpoint_ns: "__empty__",
        checkpoint_id: cp.id,
        parent_checkpoint_id: cp.parentId ?? ZERO,
        checkpoint_ts: Date.parse(cp.ts) + 0.456,
        checkpoint: pyCheckpoint(cp, cp.channelValues),
        metadata: pyDumps({ ...cp.metadata, writes: null }),
        has_writes: cp.writes.length > 0,
        source: cp.metadata.source,
        step: cp.metadata.step,
      }),
    });
    for (const w of cp.writes) {
      cmds.push({
        kind: "set",
        key: `checkpoint_write:${t}:__empty__:${cp.id}:${w.taskId}:${w.idx}`,
        value: JSON.stringify(pyWriteDoc(t, "__empty__", cp, w, base64)),
      });
    }
    cmds.push({ kind: "set", key: `checkpoint_latest:${t}:__empty__`, value: key });
  }
  return cmds;
}

function pythonShallow(conv: Conversation): Cmd[] {
  const cp = conv.checkpoints[conv.checkpoints.length - 1]!;
  const t = conv.threadId;
  return [
    {
      kind: "set",
      key: `checkpoint:${t}:__empty__`,
      value: JSON.stringify({
        thread_id: t,
        run_id: "1f06f4a0-1c20-6a00-8000-aaaaaaaaaaaa",
        checkpoint_ns: "__empty__",
        checkpoint_id: cp.id,
        checkpoint_ts: Date.parse(cp.ts),
        checkpoint: pyCheckpoint(cp, cp.channelValues),
        metadata: cp.metadata,
        source: cp.metadata.source,
        step: cp.metadata.step,
      }),
    },
  ];
}

function python00(conv: Conversation): Cmd[] {
  const t = conv.threadId;
  const cmds: Cmd[] = [];
  for (const cp of conv.checkpoints) {
    // <= 0.0.8 keyed each checkpoint by the config's id: its parent's (the zero id for the first).
    const keyId = cp.parentId ?? ZERO;
    const changed = Object.fromEntries(
      cp.changed.filter((c) => c in cp.channelValues).map((c) => [c, cp.channelValues[c]]),
    );
    cmds.push({
      kind: "set",
      key: `checkpoint:${t}:__empty__:${keyId}`,
      value: JSON.stringify({
        thread_id: t,
        checkpoint_ns: "__empty__",
        checkpoint_id: keyId,
        parent_checkpoint_id: keyId,
        checkpoint: { ...pyCheckpoint(cp, changed), v: 3 },
        metadata: pyDumps({ ...cp.metadata, writes: null }),
        source: cp.metadata.source,
        step: cp.metadata.step,
      }),
    });
    for (const ch of cp.changed) {
      const has = ch in cp.channelValues;
      cmds.push({
        kind: "set",
        key: `checkpoint_blob:${t}:__empty__:${ch}:${pyVersion(cp.channelVersions[ch]!)}`,
        value: JSON.stringify({
          thread_id: t,
          checkpoint_ns: "__empty__",
          channel: ch,
          version: pyVersion(cp.channelVersions[ch]!),
          type: has ? "json" : "empty",
          blob: has ? pyDumps(toPythonJson(cp.channelValues[ch])) : null,
        }),
      });
    }
    for (const w of cp.writes) {
      cmds.push({
        kind: "set",
        key: `checkpoint_write:${t}:__empty__:${cp.id}:${w.taskId}:${w.idx}`,
        value: JSON.stringify(pyWriteDoc(t, "", cp, w, false)),
      });
    }
  }
  return cmds;
}

function howto(conv: Conversation, sep: ":" | "$", msgpack: boolean): Cmd[] {
  const t = conv.threadId;
  const cmds: Cmd[] = [];
  const dump = (v: unknown): Buffer =>
    msgpack ? Buffer.from(toPythonMsgpack(v)) : Buffer.from(pyDumps(toPythonJson(v)));
  for (const cp of conv.checkpoints) {
    const checkpoint = {
      v: cp.v,
      ts: cp.ts,
      id: cp.id,
      channel_values: cp.channelValues,
      channel_versions: pyVersions(cp.channelVersions),
      versions_seen: pySeen(cp.versionsSeen),
      pending_sends: [],
    };
    cmds.push({
      kind: "hset",
      key: `checkpoint${sep}${t}${sep}${sep}${cp.id}`,
      fields: {
        checkpoint: dump(checkpoint),
        type: msgpack ? "msgpack" : "json",
        metadata: pyDumps(cp.metadata),
        parent_checkpoint_id: cp.parentId ?? "",
      },
    });
    for (const w of cp.writes) {
      cmds.push({
        kind: "hset",
        key: `writes${sep}${t}${sep}${sep}${cp.id}${sep}${w.taskId}${sep}${w.idx}`,
        fields: { channel: w.channel, type: msgpack ? "msgpack" : "json", value: dump(w.value) },
      });
    }
  }
  return cmds;
}

function checkpointRedis(conv: Conversation): Cmd[] {
  const t = conv.threadId;
  const cmds: Cmd[] = [];
  for (const cp of conv.checkpoints) {
    const checkpoint = {
      v: cp.v,
      id: cp.id,
      ts: cp.ts,
      channel_values: { ...cp.channelValues, __pregel_tasks: [[], []] },
      channel_versions: cp.channelVersions,
      versions_seen: cp.versionsSeen,
    };
    cmds.push({
      kind: "hset",
      key: `checkpoint:${t}::${cp.id}`,
      fields: {
        checkpoint: commaBytes(JSON.stringify(checkpoint)),
        type: "json",
        metadata: commaBytes(JSON.stringify(cp.metadata)),
        metadata_type: "json",
        parent_checkpoint_id: cp.parentId ?? "",
      },
    });
    for (const w of cp.writes) {
      cmds.push({
        kind: "hset",
        key: `writes:${t}::${cp.id}:${w.taskId}:${w.idx}`,
        fields: { channel: w.channel, type: "json", value: commaBytes(JSON.stringify(w.value)) },
      });
    }
  }
  return cmds;
}

/** The Redis commands that store `conv` in `format`. */
export function fixtureCommands(format: FixtureFormat, conv: Conversation): Cmd[] {
  switch (format) {
    case "js":
      return jsDocs(conv, true);
    case "js-legacy":
      return jsDocs(conv, false);
    case "js-shallow":
      return jsShallow(conv);
    case "python":
      return python(conv, true);
    case "python-0.1":
      return python(conv, false);
    case "python-shallow":
      return pythonShallow(conv);
    case "python-0.0":
      return python00(conv);
    case "howto-colon":
      return howto(conv, ":", false);
    case "howto-dollar":
      return howto(conv, "$", true);
    case "checkpoint-redis":
      return checkpointRedis(conv);
  }
}

/** Writes `conv` to Redis in `format`; returns the number of keys written. */
export async function writeFixture(
  redis: Redis,
  format: FixtureFormat,
  conv: Conversation,
): Promise<number> {
  const cmds = fixtureCommands(format, conv);
  const pipe = redis.pipeline();
  for (const c of cmds) {
    if (c.kind === "set") pipe.set(c.key, c.value);
    else pipe.hset(c.key, c.fields);
  }
  await pipe.exec();
  return cmds.length;
}

/** Whether a format keeps only the latest checkpoint. */
export function isShallow(format: FixtureFormat): boolean {
  return format === "js-shallow" || format === "python-shallow";
}

/** Message contents in order, for comparing histories. */
export function contents(messages: BaseMessage[]): string[] {
  return messages.map(
    (m) =>
      `${m.getType()}:${typeof m.content === "string" ? m.content : JSON.stringify(m.content)}`,
  );
}

import {
  WRITES_IDX_MAP,
  type ChannelVersions,
  type PendingWrite,
} from "@langchain/langgraph-checkpoint";
import { toPayload, type Encoded } from "./codec.js";
import { prefixesAfter, type DeltaBase, type StoredPrefix } from "./delta-cache.js";
import type { QueuedWrite } from "./write-queue.js";

/**
 * Write planning: what a put or putWrites sends, decided without I/O. The saver supplies the
 * encoder and the delta bases it holds; the plan says which rows to send (parallel arrays, as
 * the put statement takes them) and which bases to remember once Postgres confirms the rows.
 */

/** Turns a value into the serializer's output; sync when it can, async otherwise. */
export interface ValueEncoder {
  encodeSync(value: unknown): Encoded | undefined;
  dumps(value: unknown): Promise<Encoded>;
}

/** A delta base to remember for a channel once its row is confirmed inserted. */
export interface PlannedBase {
  channel: string;
  version: string;
  root: string;
  items: unknown[];
  depth: number;
  prefixes: StoredPrefix[];
}

/** The blob rows of one put, as the parallel arrays `$7..$14` of the put statement. */
export interface PutPlan {
  channels: string[];
  versions: string[];
  types: string[];
  txts: Array<string | null>;
  b64s: Array<string | null>;
  bases: Array<string | null>;
  roots: Array<string | null>;
  /** xmin of each delta's base row: the put stores nothing unless that very row still exists. */
  baseXmins: Array<string | null>;
  remember: PlannedBase[];
}

/** Inputs of {@link planPut}. */
export interface PutPlanInput {
  values: Record<string, unknown>;
  newVersions: ChannelVersions;
  storage: "delta" | "full";
  /** Deltas stacked on one full value at most. */
  maxDeltaDepth: number;
  /** What this process last stored or loaded for a channel of the thread. */
  baseOf(channel: string): DeltaBase | undefined;
  encoder: ValueEncoder;
}

/** Whether `value` begins with the very element objects of `prefix`. */
export function startsWith(value: readonly unknown[], prefix: readonly unknown[]): boolean {
  if (prefix.length > value.length) return false;
  for (let i = 0; i < prefix.length; i++) if (value[i] !== prefix[i]) return false;
  return true;
}

/**
 * Plans the blob rows of a put: one row per channel of `newVersions` that has a value. An array
 * that extends (by element identity) what this process holds for the channel, below
 * `maxDeltaDepth`, becomes a delta row holding only the appended elements; everything else is a
 * full value (compressed in delta storage).
 */
export async function planPut(input: PutPlanInput): Promise<PutPlan> {
  const { values, storage, maxDeltaDepth, encoder } = input;
  const plan: PutPlan = {
    channels: [],
    versions: [],
    types: [],
    txts: [],
    b64s: [],
    bases: [],
    roots: [],
    baseXmins: [],
    remember: [],
  };
  for (const [channel, rawVersion] of Object.entries(input.newVersions ?? {})) {
    const version = String(rawVersion);
    // A channel without a value needs no row: readers treat a missing row exactly like the
    // official saver's "empty" row (the channel is absent).
    if (!(channel in values)) continue;
    plan.channels.push(channel);
    plan.versions.push(version);
    const value = values[channel];
    const prev = storage === "delta" && Array.isArray(value) ? input.baseOf(channel) : undefined;
    const extendsPrev =
      prev !== undefined &&
      prev.version !== version &&
      Array.isArray(value) &&
      startsWith(value, prev.items);
    // Only a base whose row identity is known: the put re-checks that row under the thread's
    // write lock, so a delete from another process cannot leave the delta without it.
    const base =
      extendsPrev && prev.items.length > 0 && prev.depth < maxDeltaDepth && prev.xmin !== undefined
        ? prev
        : undefined;
    if (base && Array.isArray(value)) {
      const suffix = value.slice(base.items.length);
      const [type, data] = encoder.encodeSync(suffix) ?? (await encoder.dumps(suffix));
      if (type === "json") {
        const payload = toPayload("delta", data, true);
        plan.types.push(payload.type);
        plan.txts.push(payload.txt);
        plan.b64s.push(payload.b64);
        plan.bases.push(base.version);
        plan.roots.push(base.root);
        plan.baseXmins.push(base.xmin ?? null);
        plan.remember.push({
          channel,
          version,
          root: base.root,
          items: value.slice(),
          depth: base.depth + 1,
          prefixes: prefixesAfter(base),
        });
        continue;
      }
    }
    const [type, data] = encoder.encodeSync(value) ?? (await encoder.dumps(value));
    const payload = toPayload(type, data, storage === "delta");
    plan.types.push(payload.type);
    plan.txts.push(payload.txt);
    plan.b64s.push(payload.b64);
    plan.bases.push(null);
    plan.roots.push(null);
    plan.baseXmins.push(null);
    if (storage === "delta" && Array.isArray(value)) {
      // A full value (a new chain) still extends what this process stored before, when its
      // elements are the same objects: those rows stay valid prefixes.
      plan.remember.push({
        channel,
        version,
        root: version,
        items: value.slice(),
        depth: 0,
        prefixes: extendsPrev ? prefixesAfter(prev) : [],
      });
    }
  }
  return plan;
}

/**
 * The rows of one putWrites call: one per (task, idx). Special channels (errors, interrupts)
 * have fixed negative slots and the last one wins; for the others the first one wins, as in
 * MemorySaver.
 */
export function writeSlots(writes: readonly PendingWrite[]): Array<[number, PendingWrite]> {
  return slotPositions(writes).map(([idx, at]) => [idx, writes[at]!]);
}

/** {@link writeSlots} as `[idx, position of the write in writes]`. */
function slotPositions(writes: readonly PendingWrite[]): Array<[number, number]> {
  const byIdx = new Map<number, number>();
  writes.forEach((write, i) => {
    const special = WRITES_IDX_MAP[write[0]];
    const idx = special ?? i;
    if (special !== undefined || !byIdx.has(idx)) byIdx.set(idx, i);
  });
  return [...byIdx];
}

/** Inputs of {@link planWrites}, identifying the task the writes belong to. */
export interface WritesTarget {
  threadId: string;
  ns: string;
  checkpointId: string;
  taskId: string;
  taskPath: string;
  storage: "delta" | "full";
  encoder: ValueEncoder;
}

/**
 * Plans the rows of one putWrites call (see {@link writeSlots}), serialized. `texts[i]`, when
 * given, is the JSON text of `writes[i]`'s value as `encoder.encodeSync` would make it (made once
 * by the caller for itself and this plan, see encoded-writes.ts).
 */
export async function planWrites(
  target: WritesTarget,
  writes: readonly PendingWrite[],
  texts?: readonly string[],
): Promise<QueuedWrite[]> {
  const { encoder } = target;
  const rows: QueuedWrite[] = [];
  for (const [idx, at] of slotPositions(writes)) {
    const [channel, value] = writes[at]!;
    const text = texts?.[at];
    const [type, data] =
      text !== undefined
        ? ["json", text]
        : (encoder.encodeSync(value) ?? (await encoder.dumps(value)));
    const payload = toPayload(type, data, target.storage === "delta");
    rows.push({
      threadId: target.threadId,
      ns: target.ns,
      checkpointId: target.checkpointId,
      taskId: target.taskId,
      taskPath: target.taskPath,
      idx,
      channel,
      type: payload.type,
      txt: payload.txt,
      b64: payload.b64,
    });
  }
  return rows;
}

/** The per-row arrays of queued writes after thread and namespace, as the statements take them. */
export function writeColumns(rows: readonly QueuedWrite[]): unknown[] {
  return [
    rows.map((r) => r.checkpointId),
    rows.map((r) => r.taskId),
    rows.map((r) => r.taskPath),
    rows.map((r) => r.idx),
    rows.map((r) => r.channel),
    rows.map((r) => r.type),
    rows.map((r) => r.txt),
    rows.map((r) => r.b64),
  ];
}

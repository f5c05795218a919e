import type { RunnableConfig } from "@langchain/core/runnables";
import {
  TASKS,
  WRITES_IDX_MAP,
  compareWritesSortKeys,
  maxChannelVersion,
  writesSortKey,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  JsonPlusSerializer,
  type SerializerProtocol,
  type WritesSortKey,
} from "@langchain/langgraph-checkpoint";
import { ThreadlineError } from "../../errors.js";
import { asLimit } from "../config-ids.js";
import { fastEncode } from "../postgres/fast-encode.js";
import { estimateBytes, estimateItemsBytes } from "../size.js";
import {
  PendingLog,
  SerializedItem,
  type PendingCheckpoint,
  type PendingOp,
  type Serialized,
} from "./pending-log.js";

export type { PendingCheckpoint, PendingOp, Serialized } from "./pending-log.js";

/** Fixed per-entry overhead (maps, keys, ids) counted on top of the serialized bytes. */
const ENTRY_OVERHEAD_BYTES = 128;

/**
 * A checkpoint already durable in Postgres, cached as the saver received it instead of
 * serialized: serializing the whole state at every put made the cache cost what MemorySaver
 * costs (about 18 % of a chat turn). Channel values are treated as immutable once checkpointed,
 * as LangGraph's reducers treat them (the Postgres checkpointer's delta cache assumes the same).
 * Pending entries, which only exist in memory, are always serialized.
 */
interface LiveCheckpoint {
  live: Checkpoint;
}

interface CheckpointEntry {
  id: string;
  parentId: string | undefined;
  checkpoint: PendingCheckpoint | LiveCheckpoint;
  metadata: Serialized;
  /** `channel -> version` of the checkpoint, kept unserialized to resolve blobs without decoding. */
  versions: Record<string, string>;
  /** Not yet in Postgres. Pending entries are never evicted. */
  pending: boolean;
  bytes: number;
}

interface WriteEntry {
  taskId: string;
  channel: string;
  value: Serialized;
  sortKey: WritesSortKey;
  pending: boolean;
  bytes: number;
}

interface NamespaceState {
  checkpoints: Map<string, CheckpointEntry>;
  /**
   * `channel\0version -> id of the checkpoint whose channel_values hold it`. The same model as
   * Postgres' checkpoint_blobs: a checkpoint's values are the blobs of its channel_versions, and a
   * blob exists only for versions some put declared new (or the cache saw whole).
   */
  blobs: Map<string, string>;
  /** checkpoint id -> `taskId\0idx` -> write */
  writes: Map<string, Map<string, WriteEntry>>;
}

interface ThreadState {
  namespaces: Map<string, NamespaceState>;
  /** Bytes of entries that are already in Postgres (the evictable cache). */
  cachedBytes: number;
}

/** Limits of a {@link FallbackStore}. */
export interface FallbackStoreLimits {
  /** Pending checkpoints + writes held at most. */
  maxPendingEntries: number;
  /** Pending serialized bytes held at most. */
  maxPendingBytes: number;
  /** Threads whose recent checkpoints are cached while Postgres is up; 0 disables the cache. */
  cacheMaxThreads: number;
  /** Bytes of cached (already durable) entries at most. */
  cacheMaxBytes: number;
  /** Durable checkpoints kept per thread and namespace (the latest ones). */
  cacheCheckpointsPerNamespace: number;
}

/** Bytes of one reference to a shared element in a pending array. */
const REFERENCE_BYTES = 8;

type ChannelVersion = number | string;

const blobKey = (channel: string, version: string) => `${channel}\u0000${version}`;

/** The serialized size in bytes (a text counts as its UTF-8 bytes, as when it was encoded). */
function byteLength(s: Serialized): number {
  const data = s[1];
  return typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
}

function jsonLength(value: unknown): number {
  try {
    return JSON.stringify(value)?.length ?? 8;
  } catch {
    return 1024; // circular or otherwise unserializable: only an estimate is needed
  }
}

/**
 * `versions_seen` copied (node -> channel -> version; versions are numbers or strings), as
 * `structuredClone` would, at a fraction of its cost: it is copied at every cached put.
 */
function copyVersionsSeen(
  seen: Checkpoint["versions_seen"] | undefined,
): Checkpoint["versions_seen"] {
  const out: Checkpoint["versions_seen"] = {};
  for (const [node, versions] of Object.entries(seen ?? {})) out[node] = { ...versions };
  return out;
}

/**
 * A copy of a checkpoint's top level: its maps are copied and its arrays sliced, elements shared.
 * Taken when the cache stores a checkpoint and again for each read of it, so neither the caller's
 * later changes nor a reader's reach the cache.
 */
function copyTopLevel(checkpoint: Checkpoint): Checkpoint {
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(checkpoint.channel_values ?? {}))
    values[k] = Array.isArray(v) ? v.slice() : v;
  return {
    ...checkpoint,
    channel_values: values,
    channel_versions: { ...checkpoint.channel_versions },
    versions_seen: copyVersionsSeen(checkpoint.versions_seen),
  };
}

function snapshot(checkpoint: Checkpoint): LiveCheckpoint {
  return { live: copyTopLevel(checkpoint) };
}

function isLive(c: PendingCheckpoint | LiveCheckpoint): c is LiveCheckpoint {
  return "live" in c;
}

function checkpointBytes(c: PendingCheckpoint | LiveCheckpoint): number {
  if (!isLive(c)) return c.bytes;
  const { channel_values: values, ...rest } = c.live;
  let n = jsonLength(rest);
  // Heap estimates (elements measured once each): the cache's bound is on what it keeps alive.
  for (const [k, v] of Object.entries(values ?? {}))
    n += k.length + (Array.isArray(v) ? estimateItemsBytes(v) : estimateBytes(v));
  return n;
}

/**
 * Postgres `@>` containment for metadata filters: the saver filters with `metadata @> $filter`,
 * so the memory side must match the same way (objects by key, arrays by element, scalars equal).
 */
export function jsonContains(container: unknown, contained: unknown): boolean {
  if (contained === null || typeof contained !== "object") {
    if (typeof container === "number" && typeof contained === "number")
      return container === contained;
    return container === contained;
  }
  if (Array.isArray(contained)) {
    if (!Array.isArray(container)) return false;
    return contained.every((c) => container.some((x) => jsonContains(x, c)));
  }
  if (container === null || typeof container !== "object" || Array.isArray(container)) return false;
  const outer = container as Record<string, unknown>;
  return Object.entries(contained as Record<string, unknown>).every(
    ([k, v]) => Object.prototype.hasOwnProperty.call(outer, k) && jsonContains(outer[k], v),
  );
}

/**
 * The memory side of {@link FallbackCheckpointer}: a Postgres-shaped store (checkpoints, blobs by
 * channel version, writes) plus the ordered log of operations Postgres has not seen yet.
 *
 * It holds two kinds of entries. *Cached* ones were written (or read) while Postgres was up; they
 * let a thread that began before an outage be read whole during it, and they may be evicted.
 * *Pending* ones were acknowledged during an outage; they are never evicted, only replayed and
 * then turned into cached ones. Everything is held serialized.
 */
export class FallbackStore {
  private readonly threads = new Map<string, ThreadState>();
  /** The only source of pending counts (see PendingLog). */
  private readonly log = new PendingLog();
  private cachedBytesCount = 0;
  /**
   * Pending array elements by the object they were serialized from (or decoded into): a message
   * is serialized once per outage however many versions hold it. Reset once the log is empty.
   */
  private itemOf = new WeakMap<object, SerializedItem>();
  /** Each serialized element decoded once, so every read and the replay see the same object. */
  private decodedItems = new WeakMap<SerializedItem, Promise<unknown>>();
  /** The serializer is LangGraph's own: plain JSON then takes the synchronous encoder. */
  private readonly fastJson: boolean;

  /**
   * @param phase what the checkpointer is doing, for the FALLBACK_FULL message: `outage` while
   *   Postgres is unreachable, `replaying` once it answered and the log is being replayed.
   */
  constructor(
    private readonly serde: SerializerProtocol,
    private readonly limits: FallbackStoreLimits,
    private readonly nextVersion: (current: ChannelVersion | undefined) => ChannelVersion,
    private readonly phase: () => "outage" | "replaying" = () => "outage",
  ) {
    this.fastJson = Object.getPrototypeOf(serde) === JsonPlusSerializer.prototype;
  }

  /**
   * The serializer's output for `value` without awaiting it: with LangGraph's own serializer,
   * plain JSON (metadata, messages) gets the same bytes from one `JSON.stringify` (see
   * fast-encode.ts); undefined means "ask the serializer". The write-through cache serializes
   * every put's metadata and every write, so its cost is part of every turn.
   */
  encodeSync(value: unknown): Serialized | undefined {
    const text = this.encodeText(value);
    return text === undefined ? undefined : ["json", text];
  }

  /** The JSON text of {@link encodeSync}, or undefined. */
  private encodeText(value: unknown): string | undefined {
    if (!this.fastJson || value instanceof Uint8Array) return undefined;
    return fastEncode(value);
  }

  /**
   * The JSON texts of the writes' values as {@link encodeSync} makes them, or undefined when one
   * of them needs the serializer: made once for the cache and the primary (encoded-writes.ts).
   */
  encodeWriteTexts(writes: ReadonlyArray<[string, unknown]>): string[] | undefined {
    const texts: string[] = [];
    for (const [, value] of writes) {
      const text = this.encodeText(value);
      if (text === undefined) return undefined;
      texts.push(text);
    }
    return texts;
  }

  private async dumps(value: unknown): Promise<Serialized> {
    return this.encodeSync(value) ?? (await this.serde.dumpsTyped(value));
  }

  // ------------------------------------------------------------------ accounting

  /** Pending checkpoints, writes and deletes not yet in Postgres: the log's count. */
  get pendingEntries(): number {
    return this.log.entries;
  }

  /** Serialized bytes of the pending entries (plus a fixed overhead per entry): the log's count. */
  get pendingBytes(): number {
    return this.log.bytes;
  }

  /** Bytes of cached entries (already durable). */
  get cachedBytes(): number {
    return this.cachedBytesCount;
  }

  /** Threads with anything in memory. */
  get threadCount(): number {
    return this.threads.size;
  }

  /**
   * True when the log holds operations of the thread (a delete counts too): memory holds
   * something of it that Postgres has not seen.
   */
  hasPending(threadId: string): boolean {
    return this.log.countOf(threadId) > 0;
  }

  /** Resolves once the thread has nothing logged, or when {@link releaseWaiters} is called. */
  whenReplayed(threadId: string): Promise<void> {
    return this.log.whenClear(threadId);
  }

  /** Threads a caller waits for: the replay takes them first. */
  get awaitedThreads(): ReadonlySet<string> {
    return this.log.awaited;
  }

  /** Wakes every {@link whenReplayed} waiter (the replay round ended). */
  releaseWaiters(): void {
    this.log.releaseWaiters();
  }

  /** The log in acknowledgement order (a snapshot; safe to iterate while it changes). */
  pendingOps(limit = Number.POSITIVE_INFINITY): PendingOp[] {
    return this.log.head(limit);
  }

  /** Throws FALLBACK_FULL when `entries`/`bytes` more would exceed the limits. Mutates nothing. */
  private admit(entries: number, bytes: number): void {
    const { maxPendingEntries, maxPendingBytes } = this.limits;
    const pendingEntries = this.log.entries;
    const pendingBytes = this.log.bytes;
    if (pendingEntries + entries > maxPendingEntries || pendingBytes + bytes > maxPendingBytes) {
      const replaying = this.phase() === "replaying";
      throw new ThreadlineError(
        "FALLBACK_FULL",
        `the in-memory fallback is full (${pendingEntries}/${maxPendingEntries} entries, ` +
          `${pendingBytes}/${maxPendingBytes} bytes pending ` +
          (replaying
            ? "while Postgres, reachable again, is still receiving the replay of what was acknowledged during the outage); "
            : "while Postgres is unreachable); ") +
          "the write was refused so that nothing already acknowledged is evicted " +
          (replaying
            ? "(retry shortly: the backlog is draining; or raise fallback.maxPendingEntries / fallback.maxPendingBytes)"
            : "(raise fallback.maxPendingEntries / fallback.maxPendingBytes, or restore Postgres)"),
        {
          details: {
            phase: this.phase(),
            pendingEntries,
            pendingBytes,
            maxPendingEntries,
            maxPendingBytes,
          },
        },
      );
    }
  }

  private thread(threadId: string, create: true): ThreadState;
  private thread(threadId: string, create: false): ThreadState | undefined;
  private thread(threadId: string, create: boolean): ThreadState | undefined {
    let state = this.threads.get(threadId);
    if (state) {
      // Map order doubles as LRU order.
      this.threads.delete(threadId);
      this.threads.set(threadId, state);
    } else if (create) {
      state = { namespaces: new Map(), cachedBytes: 0 };
      this.threads.set(threadId, state);
    }
    return state;
  }

  private namespace(state: ThreadState, ns: string): NamespaceState {
    let n = state.namespaces.get(ns);
    if (!n) {
      n = { checkpoints: new Map(), blobs: new Map(), writes: new Map() };
      state.namespaces.set(ns, n);
    }
    return n;
  }

  /**
   * Counts an entry's bytes in or out of the cache. Pending entries are counted by the log (their
   * operation's `entries` and `bytes`), never here; an entry's `pending` flag only keeps it from
   * eviction and says whose count its bytes are in.
   */
  private account(state: ThreadState, pending: boolean, bytes: number, sign: 1 | -1): void {
    if (pending) return;
    state.cachedBytes += sign * bytes;
    this.cachedBytesCount += sign * bytes;
  }

  // ------------------------------------------------------------------ writes

  /**
   * Stores a checkpoint. `pending` (fallback mode) logs it for replay and stores blobs only for
   * `newVersions`, exactly as Postgres would; a cached one (written through while Postgres is up)
   * holds every value it carries, so it can seed the blobs of checkpoints written later.
   */
  async putCheckpoint(args: {
    threadId: string;
    ns: string;
    parentId: string | undefined;
    checkpoint: Checkpoint;
    metadata: CheckpointMetadata;
    newVersions: ChannelVersions;
    pending: boolean;
  }): Promise<void> {
    if (!args.pending && this.limits.cacheMaxThreads <= 0) return;
    const metadata = this.encodeSync(args.metadata) ?? (await this.serde.dumpsTyped(args.metadata));
    const checkpoint = args.pending
      ? await this.serializePending(args.threadId, args.ns, args.checkpoint)
      : snapshot(args.checkpoint);
    this.putSerialized({ ...args, checkpoint, metadata, source: args.checkpoint });
  }

  /** Synchronous part of putCheckpoint, so that mode checks and the insert cannot interleave. */
  putSerialized(args: {
    threadId: string;
    ns: string;
    parentId: string | undefined;
    /** Serialized (see serializePending), or (only for an entry that is not pending) a live snapshot. */
    checkpoint: PendingCheckpoint | LiveCheckpoint;
    metadata: Serialized;
    newVersions: ChannelVersions;
    pending: boolean;
    /** The live checkpoint (for its channel_versions and channel_values keys). */
    source: Checkpoint;
  }): void {
    const { threadId, ns, pending, source } = args;
    const logged = isLive(args.checkpoint) ? undefined : args.checkpoint;
    if (pending && !logged) {
      throw new ThreadlineError("INTERNAL", "a pending checkpoint must be serialized");
    }
    const newVersions = { ...args.newVersions };
    const bytes =
      checkpointBytes(args.checkpoint) +
      byteLength(args.metadata) +
      JSON.stringify(newVersions).length +
      ENTRY_OVERHEAD_BYTES;
    if (pending) this.admit(1, bytes);
    if (!pending && this.limits.cacheMaxThreads <= 0) return;

    const state = this.thread(threadId, true);
    const n = this.namespace(state, ns);
    const versions: Record<string, string> = {};
    for (const [ch, v] of Object.entries(source.channel_versions ?? {})) versions[ch] = String(v);
    const existing = n.checkpoints.get(source.id);
    if (existing) {
      this.account(state, existing.pending, existing.bytes, -1);
    }
    const entry: CheckpointEntry = {
      id: source.id,
      parentId: args.parentId,
      checkpoint: args.checkpoint,
      metadata: args.metadata,
      versions,
      pending: pending || (existing?.pending ?? false),
      bytes,
    };
    n.checkpoints.set(source.id, entry);
    this.account(state, entry.pending, bytes, 1);
    const values: Record<string, unknown> = source.channel_values ?? {};
    if (pending) {
      for (const [ch, v] of Object.entries(newVersions)) {
        if (ch in values) n.blobs.set(blobKey(ch, String(v)), source.id);
      }
    } else {
      for (const [ch, v] of Object.entries(versions)) {
        if (ch in values && !n.blobs.has(blobKey(ch, v))) n.blobs.set(blobKey(ch, v), source.id);
      }
    }
    if (pending) {
      this.log.append({
        kind: "put",
        threadId,
        ns,
        parentId: args.parentId,
        checkpointId: source.id,
        checkpoint: logged!,
        metadata: args.metadata,
        newVersions,
        entries: 1,
        bytes,
      });
    } else {
      this.trim(threadId);
    }
  }

  /**
   * A checkpoint as a pending entry holds it (see {@link PendingCheckpoint}): array channels
   * element by element, elements the thread's latest durable checkpoint already holds (by
   * identity) kept as they are, every other element serialized once per outage and shared.
   */
  async serializePending(
    threadId: string,
    ns: string,
    checkpoint: Checkpoint,
  ): Promise<PendingCheckpoint> {
    const durable = this.latestDurable(threadId, ns);
    const values: Record<string, unknown> = checkpoint.channel_values ?? {};
    const others: Record<string, unknown> = {};
    const arrays: Record<string, unknown[]> = {};
    let bytes = 0;
    for (const [channel, value] of Object.entries(values)) {
      if (!Array.isArray(value)) {
        others[channel] = value;
        continue;
      }
      const known = durable?.[channel];
      const items: unknown[] = new Array<unknown>(value.length);
      let i = 0;
      // The prefix Postgres already holds: those objects are replayed as they are (the primary
      // stores only what follows them), exactly as a put without an outage would be.
      if (Array.isArray(known)) {
        for (; i < value.length && i < known.length && value[i] === known[i]; i++)
          items[i] = value[i];
      }
      for (; i < value.length; i++) {
        const item: unknown = value[i];
        if (item === null || typeof item !== "object") {
          items[i] = item; // primitives cannot change, but they take room all the same
          bytes += estimateBytes(item);
          continue;
        }
        let shared = this.itemOf.get(item);
        if (!shared) {
          shared = new SerializedItem(await this.dumps(item));
          this.itemOf.set(item, shared);
          bytes += byteLength(shared.value);
        }
        items[i] = shared;
      }
      arrays[channel] = items;
      bytes += REFERENCE_BYTES * value.length;
    }
    const rest = await this.dumps({ ...checkpoint, channel_values: others });
    return { rest, arrays, bytes: bytes + byteLength(rest) };
  }

  /** channel_values of the thread's newest durable, live-cached checkpoint in `ns`. */
  private latestDurable(threadId: string, ns: string): Record<string, unknown> | undefined {
    const n = this.threads.get(threadId)?.namespaces.get(ns);
    let best: CheckpointEntry | undefined;
    for (const e of n?.checkpoints.values() ?? []) {
      if (!e.pending && isLive(e.checkpoint) && (!best || e.id > best.id)) best = e;
    }
    return best && isLive(best.checkpoint) ? best.checkpoint.live.channel_values : undefined;
  }

  /** One pending element, decoded once (reads and the replay share the object). */
  private decodeItem(item: SerializedItem): Promise<unknown> {
    let decoded = this.decodedItems.get(item);
    if (!decoded) {
      decoded = this.serde.loadsTyped(item.value[0], item.value[1]).then((value: unknown) => {
        // A later put holding the decoded object shares the same bytes.
        if (value !== null && typeof value === "object") this.itemOf.set(value, item);
        return value;
      });
      this.decodedItems.set(item, decoded);
    }
    return decoded;
  }

  /** A pending checkpoint as the saver received it (elements shared, see decodeItem). */
  private async loadPending(c: PendingCheckpoint): Promise<Checkpoint> {
    const checkpoint = await this.load<Checkpoint>(c.rest);
    const values: Record<string, unknown> = { ...(checkpoint.channel_values ?? {}) };
    for (const [channel, items] of Object.entries(c.arrays)) {
      values[channel] = await Promise.all(
        items.map((item) => (item instanceof SerializedItem ? this.decodeItem(item) : item)),
      );
    }
    return { ...checkpoint, channel_values: values };
  }

  /** Serializes writes (the values only), for {@link putWritesSerialized}. */
  async serializeWrites(writes: Array<[string, unknown]>): Promise<Array<[string, Serialized]>> {
    // Each value tries the synchronous encoder first (dumps); callers that must not await take
    // encodeWriteTexts before this, so trying it here again for the whole list would be twice.
    return Promise.all(
      writes.map(async ([channel, value]): Promise<[string, Serialized]> => [
        channel,
        await this.dumps(value),
      ]),
    );
  }

  /**
   * Stores the writes of one task. Index and conflict rules follow the savers: special channels
   * (errors, interrupts) take fixed negative slots and overwrite; other writes keep the first
   * value stored for a `(task, idx)`.
   */
  putWritesSerialized(args: {
    threadId: string;
    ns: string;
    checkpointId: string;
    taskId: string;
    taskPath: string;
    writes: Array<[string, Serialized]>;
    pending: boolean;
  }): void {
    const { threadId, ns, checkpointId, taskId, taskPath, writes, pending } = args;
    if (writes.length === 0) return;
    const sizes = writes.map(
      ([channel, value]) =>
        byteLength(value) + channel.length + taskId.length + taskPath.length + ENTRY_OVERHEAD_BYTES,
    );
    const bytes = sizes.reduce((a, b) => a + b, 0);
    if (pending) this.admit(writes.length, bytes);
    if (!pending && this.limits.cacheMaxThreads <= 0) return;
    const state = this.thread(threadId, true);
    const n = this.namespace(state, ns);
    let forCheckpoint = n.writes.get(checkpointId);
    if (!forCheckpoint) n.writes.set(checkpointId, (forCheckpoint = new Map<string, WriteEntry>()));
    writes.forEach(([channel, value], i) => {
      const special = WRITES_IDX_MAP[channel];
      const idx = special ?? i;
      const key = `${taskId}\u0000${idx}`;
      const existing = forCheckpoint.get(key);
      const size = sizes[i] ?? ENTRY_OVERHEAD_BYTES;
      if (existing && special === undefined) {
        // Postgres keeps the first value too, but this write must still reach it: count it.
        if (pending && !existing.pending) {
          this.account(state, false, existing.bytes, -1);
          existing.pending = true;
          this.account(state, true, existing.bytes, 1);
        }
        return;
      }
      if (existing) this.account(state, existing.pending, existing.bytes, -1);
      const entry: WriteEntry = {
        taskId,
        channel,
        value,
        sortKey: writesSortKey(taskPath, taskId, idx),
        pending: pending || (existing?.pending ?? false),
        bytes: size,
      };
      forCheckpoint.set(key, entry);
      this.account(state, entry.pending, size, 1);
    });
    if (pending) {
      this.log.append({
        kind: "putWrites",
        threadId,
        ns,
        checkpointId,
        taskId,
        taskPath,
        writes,
        entries: writes.length,
        bytes,
      });
    }
  }

  /**
   * Caches a tuple read from Postgres (never pending): the thread can then be continued from
   * memory if Postgres goes away. A checkpoint already in memory is left as it is.
   */
  async cacheTuple(tuple: CheckpointTuple): Promise<void> {
    if (this.limits.cacheMaxThreads <= 0) return;
    const c = tuple.config.configurable ?? {};
    const threadId = typeof c.thread_id === "string" ? c.thread_id : undefined;
    const ns = typeof c.checkpoint_ns === "string" ? c.checkpoint_ns : "";
    if (threadId === undefined) return;
    const existing = this.threads
      .get(threadId)
      ?.namespaces.get(ns)
      ?.checkpoints.get(tuple.checkpoint.id);
    if (existing) return;
    const parent: unknown = tuple.parentConfig?.configurable?.checkpoint_id;
    const checkpoint = snapshot(tuple.checkpoint);
    const metadata = await this.dumps(tuple.metadata ?? {});
    const writes = await Promise.all(
      (tuple.pendingWrites ?? []).map(async ([taskId, channel, value]) => ({
        taskId,
        channel,
        value: await this.dumps(value),
      })),
    );
    // Re-check after the awaits: a put may have stored this checkpoint meanwhile.
    if (this.threads.get(threadId)?.namespaces.get(ns)?.checkpoints.has(tuple.checkpoint.id))
      return;
    this.putSerialized({
      threadId,
      ns,
      parentId: typeof parent === "string" ? parent : undefined,
      checkpoint,
      metadata,
      newVersions: {},
      pending: false,
      source: tuple.checkpoint,
    });
    const state = this.threads.get(threadId);
    if (!state || writes.length === 0) return;
    const n = this.namespace(state, ns);
    let forCheckpoint = n.writes.get(tuple.checkpoint.id);
    if (!forCheckpoint) {
      forCheckpoint = new Map<string, WriteEntry>();
      n.writes.set(tuple.checkpoint.id, forCheckpoint);
    }
    // The read returned the writes already in (task_path, task_id, idx) order but without their
    // path and idx: keep that order with an ordinal key that sorts first (path "").
    writes.forEach((w, ordinal) => {
      const key = `${w.taskId}\u0000read${ordinal}`;
      if (forCheckpoint.has(key)) return;
      const bytes = byteLength(w.value) + w.channel.length + ENTRY_OVERHEAD_BYTES;
      forCheckpoint.set(key, {
        taskId: w.taskId,
        channel: w.channel,
        value: w.value,
        sortKey: ["", "", ordinal],
        pending: false,
        bytes,
      });
      this.account(state, false, bytes, 1);
    });
  }

  /**
   * Forgets a thread: cached entries, pending entries and their log operations. With
   * `pending` (fallback mode) a deleteThread operation is logged so Postgres forgets it too.
   */
  deleteThread(threadId: string, pending: boolean): void {
    const state = this.threads.get(threadId);
    if (state) {
      for (const n of state.namespaces.values()) {
        for (const e of n.checkpoints.values()) this.account(state, e.pending, e.bytes, -1);
        for (const m of n.writes.values())
          for (const w of m.values()) this.account(state, w.pending, w.bytes, -1);
      }
      this.threads.delete(threadId);
    }
    this.log.dropThread(threadId);
    if (pending) {
      const bytes = threadId.length + ENTRY_OVERHEAD_BYTES;
      // Deletes are admitted even when full: they only ever shrink what Postgres must hold.
      this.log.append({ kind: "deleteThread", threadId, entries: 1, bytes });
    }
  }

  /**
   * Marks a replayed (or abandoned) operation as done: its entries become cache. Returns false
   * when the operation is no longer in the log (its thread was deleted meanwhile).
   */
  complete(op: PendingOp): boolean {
    if (!this.log.remove(op)) return false;
    if (op.kind === "deleteThread") return true;
    const state = this.threads.get(op.threadId);
    const n = state?.namespaces.get(op.ns);
    if (!state || !n) return true;
    const stillLogged = (pred: (o: PendingOp) => boolean) => this.log.some(pred);
    if (op.kind === "put") {
      const entry = n.checkpoints.get(op.checkpointId);
      const again = stillLogged(
        (o) =>
          o.kind === "put" &&
          o.threadId === op.threadId &&
          o.ns === op.ns &&
          o.checkpointId === op.checkpointId,
      );
      if (entry?.pending && !again) {
        this.account(state, true, entry.bytes, -1);
        entry.pending = false;
        this.account(state, false, entry.bytes, 1);
      }
    } else {
      const forCheckpoint = n.writes.get(op.checkpointId);
      const again = stillLogged(
        (o) =>
          o.kind === "putWrites" &&
          o.threadId === op.threadId &&
          o.ns === op.ns &&
          o.checkpointId === op.checkpointId &&
          o.taskId === op.taskId,
      );
      if (forCheckpoint && !again) {
        // Unmark every write of the task, not only this op's indexes: an earlier op of the same
        // task (left pending because this one was still logged) is covered by this replay too.
        for (const w of forCheckpoint.values()) {
          if (w.pending && w.taskId === op.taskId) {
            this.account(state, true, w.bytes, -1);
            w.pending = false;
            this.account(state, false, w.bytes, 1);
          }
        }
      }
    }
    if (!this.hasPending(op.threadId)) this.trim(op.threadId);
    return true;
  }

  /**
   * Keeps the cache bounded: per namespace the latest durable checkpoints (plus any checkpoint
   * still providing a value to a kept one), and whole threads in LRU order. Threads with pending
   * entries are never touched.
   */
  trim(threadId?: string): void {
    if (threadId !== undefined) {
      const state = this.threads.get(threadId);
      if (state && !this.hasPending(threadId)) this.trimThread(state);
    }
    const { cacheMaxThreads, cacheMaxBytes } = this.limits;
    if (this.threads.size <= cacheMaxThreads && this.cachedBytesCount <= cacheMaxBytes) return;
    for (const [id, state] of this.threads) {
      if (this.threads.size <= cacheMaxThreads && this.cachedBytesCount <= cacheMaxBytes) break;
      if (this.hasPending(id)) continue;
      this.account(state, false, state.cachedBytes, -1);
      this.threads.delete(id);
    }
  }

  private trimThread(state: ThreadState): void {
    const keep = Math.max(1, this.limits.cacheCheckpointsPerNamespace);
    for (const n of state.namespaces.values()) {
      if (n.checkpoints.size <= keep) continue;
      const ids = [...n.checkpoints.keys()].sort().reverse();
      const kept = new Set(ids.slice(0, keep));
      const candidates = ids.slice(keep).filter((id) => {
        const e = n.checkpoints.get(id);
        const writes = n.writes.get(id);
        return e && !e.pending && ![...(writes?.values() ?? [])].some((w) => w.pending);
      });
      for (const id of ids.slice(keep)) if (!candidates.includes(id)) kept.add(id);
      // A kept checkpoint may read a channel value from an older one: keep that provider too.
      for (const id of [...kept]) {
        const e = n.checkpoints.get(id);
        if (!e) continue;
        for (const [ch, v] of Object.entries(e.versions)) {
          const provider = n.blobs.get(blobKey(ch, v));
          if (provider !== undefined) kept.add(provider);
        }
      }
      for (const id of candidates) {
        if (kept.has(id)) continue;
        const e = n.checkpoints.get(id);
        if (e) this.account(state, false, e.bytes, -1);
        n.checkpoints.delete(id);
        for (const w of n.writes.get(id)?.values() ?? []) this.account(state, false, w.bytes, -1);
        n.writes.delete(id);
      }
      for (const [key, provider] of n.blobs) if (!n.checkpoints.has(provider)) n.blobs.delete(key);
    }
  }

  // ------------------------------------------------------------------ reads

  private async load<T>(s: Serialized): Promise<T> {
    return (await this.serde.loadsTyped(s[0], s[1])) as T;
  }

  private async loadCheckpoint(c: PendingCheckpoint | LiveCheckpoint): Promise<Checkpoint> {
    return isLive(c) ? copyTopLevel(c.live) : this.loadPending(c);
  }

  private orderedWrites(n: NamespaceState, checkpointId: string): WriteEntry[] {
    const writes = [...(n.writes.get(checkpointId)?.values() ?? [])];
    writes.sort((a, b) => compareWritesSortKeys(a.sortKey, b.sortKey));
    return writes;
  }

  private async tuple(
    threadId: string,
    ns: string,
    n: NamespaceState,
    e: CheckpointEntry,
  ): Promise<CheckpointTuple> {
    const stored = await this.loadCheckpoint(e.checkpoint);
    const decoded = new Map<string, Promise<Checkpoint>>([[e.id, Promise.resolve(stored)]]);
    const channelValues: Record<string, unknown> = {};
    for (const [ch, v] of Object.entries(e.versions)) {
      const provider = n.blobs.get(blobKey(ch, v));
      if (provider === undefined) continue;
      let source = decoded.get(provider);
      if (!source) {
        const p = n.checkpoints.get(provider);
        if (!p) continue;
        source = this.loadCheckpoint(p.checkpoint);
        decoded.set(provider, source);
      }
      const values: Record<string, unknown> = (await source).channel_values ?? {};
      if (ch in values) channelValues[ch] = values[ch];
    }
    const checkpoint: Checkpoint = { ...stored, channel_values: channelValues };
    checkpoint.channel_versions ??= {};
    checkpoint.versions_seen ??= {};
    if (checkpoint.v < 4 && e.parentId !== undefined) {
      // Before format v4, pending sends lived as TASKS writes of the parent checkpoint.
      const sends = this.orderedWrites(n, e.parentId).filter((w) => w.channel === TASKS);
      checkpoint.channel_values[TASKS] = await Promise.all(
        sends.map((w) => this.load<unknown>(w.value)),
      );
      const versions = Object.values(checkpoint.channel_versions);
      checkpoint.channel_versions[TASKS] =
        versions.length > 0 ? maxChannelVersion(...versions) : this.nextVersion(undefined);
    }
    const pendingWrites = await Promise.all(
      this.orderedWrites(n, e.id).map(async (w): Promise<CheckpointPendingWrite> => [
        w.taskId,
        w.channel,
        await this.load<unknown>(w.value),
      ]),
    );
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: e.id } },
      checkpoint,
      metadata: await this.load<CheckpointMetadata>(e.metadata),
      pendingWrites,
    };
    if (e.parentId !== undefined) {
      tuple.parentConfig = {
        configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: e.parentId },
      };
    }
    return tuple;
  }

  /** The tuple of `checkpointId`, or the thread's latest in `ns`, from memory. */
  async getTuple(
    threadId: string,
    ns: string,
    checkpointId: string | undefined,
  ): Promise<CheckpointTuple | undefined> {
    const n = this.thread(threadId, false)?.namespaces.get(ns);
    if (!n) return undefined;
    let entry: CheckpointEntry | undefined;
    if (checkpointId !== undefined) {
      entry = n.checkpoints.get(checkpointId);
    } else {
      for (const e of n.checkpoints.values()) if (!entry || e.id > entry.id) entry = e;
    }
    return entry ? this.tuple(threadId, ns, n, entry) : undefined;
  }

  /** Checkpoints in memory, newest first, filtered like the Postgres saver's list. */
  async *list(
    filter: { threadId?: string; ns?: string; checkpointId?: string },
    options: CheckpointListOptions = {},
  ): AsyncGenerator<CheckpointTuple> {
    const candidates: Array<{
      threadId: string;
      ns: string;
      n: NamespaceState;
      e: CheckpointEntry;
    }> = [];
    const before = options.before?.configurable?.checkpoint_id as unknown;
    for (const [threadId, state] of this.threads) {
      if (filter.threadId !== undefined && threadId !== filter.threadId) continue;
      for (const [ns, n] of state.namespaces) {
        if (filter.ns !== undefined && ns !== filter.ns) continue;
        for (const e of n.checkpoints.values()) {
          if (filter.checkpointId !== undefined && e.id !== filter.checkpointId) continue;
          if (typeof before === "string" && before !== "" && !(e.id < before)) continue;
          candidates.push({ threadId, ns, n, e });
        }
      }
    }
    candidates.sort((a, b) => (a.e.id < b.e.id ? 1 : a.e.id > b.e.id ? -1 : 0));
    const metaFilter = options.filter;
    let remaining = asLimit(options.limit) ?? Number.POSITIVE_INFINITY;
    for (const c of candidates) {
      if (remaining <= 0) return;
      if (metaFilter && Object.keys(metaFilter).length > 0) {
        const metadata = await this.load<unknown>(c.e.metadata);
        if (!jsonContains(metadata, metaFilter)) continue;
      }
      remaining -= 1;
      yield await this.tuple(c.threadId, c.ns, c.n, c.e);
    }
  }

  /** Rebuilds the arguments of a logged put for replay. */
  async replayPutArgs(
    op: Extract<PendingOp, { kind: "put" }>,
  ): Promise<[RunnableConfig, Checkpoint, CheckpointMetadata, ChannelVersions]> {
    const configurable: Record<string, unknown> = { thread_id: op.threadId, checkpoint_ns: op.ns };
    if (op.parentId !== undefined) configurable.checkpoint_id = op.parentId;
    return [
      { configurable },
      await this.loadPending(op.checkpoint),
      await this.load<CheckpointMetadata>(op.metadata),
      { ...op.newVersions },
    ];
  }

  /** Rebuilds the arguments of a logged putWrites for replay. */
  async replayWritesArgs(
    op: Extract<PendingOp, { kind: "putWrites" }>,
  ): Promise<[RunnableConfig, Array<[string, unknown]>, string, string]> {
    const writes = await Promise.all(
      op.writes.map(async ([channel, value]): Promise<[string, unknown]> => [
        channel,
        await this.load<unknown>(value),
      ]),
    );
    return [
      {
        configurable: {
          thread_id: op.threadId,
          checkpoint_ns: op.ns,
          checkpoint_id: op.checkpointId,
        },
      },
      writes,
      op.taskId,
      op.taskPath,
    ];
  }

  /** Operations in the log. */
  get logSize(): number {
    return this.log.size;
  }

  /**
   * Called when the outage is over (the log is empty): what pending versions shared need not be
   * kept, so the maps of shared elements start afresh with the next outage. Counts nothing: the
   * log is the only source of pending counts, and every operation left it by {@link complete}
   * (which turns its entries into cache) or by a delete of its thread.
   */
  forgetSharedElements(): void {
    if (this.log.size > 0) return;
    this.itemOf = new WeakMap();
    this.decodedItems = new WeakMap();
  }

  /** Drops everything (close). */
  clear(): void {
    this.threads.clear();
    this.log.clear();
    this.cachedBytesCount = 0;
  }
}

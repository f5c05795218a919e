import {
  TASKS,
  compareWritesSortKeys,
  maxChannelVersion,
  writesSortKey,
  type Checkpoint,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type DeltaChannelHistory,
} from "@langchain/langgraph-checkpoint";
import { ThreadlineError } from "../../errors.js";
import type { PayloadCodec } from "./codec.js";
import type { DeltaBase, DeltaCache } from "./delta-cache.js";
import type { BlobRow, CheckpointRow, LoadedRow } from "./load-rows.js";

/** A pending write as read back: enough to order and decode it. */
export interface StoredWrite {
  taskId: string;
  channel: string;
  type: string;
  taskPath: string;
  idx: number;
  txt: string | null;
  b64: string | null;
}

/** What read assembly needs from the saver. */
export interface AssembleContext {
  codec: PayloadCodec;
  /** The saver's delta bases (updated when `rememberBases`). */
  deltas: DeltaCache;
  storage: "delta" | "full";
  /** The TASKS writes of a parent checkpoint, for checkpoints before format v4. */
  pendingSends(threadId: string, ns: string, parentId: string): Promise<StoredWrite[]>;
  nextVersion(current: undefined): number;
}

function blobKey(threadId: string, ns: string, channel: string, version: string): string {
  return `${threadId}\u0000${ns}\u0000${channel}\u0000${version}`;
}

function cpKey(threadId: string, ns: string, id: string): string {
  return `${threadId}\u0000${ns}\u0000${id}`;
}

/** Deltas between a blob row and the full value its chain starts from. */
function chainDepth(
  blobs: Map<string, BlobRow>,
  threadId: string,
  ns: string,
  channel: string,
  head: BlobRow,
): number {
  let depth = 0;
  for (let row: BlobRow | undefined = head; row?.base; depth++) {
    row = blobs.get(blobKey(threadId, ns, channel, row.base));
    if (depth > 100_000) break;
  }
  return depth;
}

/** What `await` would wait for: the serializer's async decode (a custom one may return any thenable). */
function isPromise(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** A delta's version: its base's elements followed by the delta's. */
function extend(base: unknown, suffix: unknown, channel: string, version: string): unknown[] {
  if (!Array.isArray(base) || !Array.isArray(suffix)) {
    throw new ThreadlineError(
      "DATA_CORRUPT",
      `delta ${channel}@${version} does not extend an array`,
    );
  }
  return (base as unknown[]).concat(suffix as unknown[]);
}

/**
 * A fresh array of the elements a held entry knows for `version` (itself or a stored prefix).
 * With `xmin`, only when that row version is the very one they came from (as the load query's
 * confirmation checks): a walk down a delta chain stops there instead of decoding the rest of
 * the chain (an instance that wrote the thread a few turns ago decodes only the deltas since).
 */
function heldValue(
  base: DeltaBase | undefined,
  version: string,
  xmin?: string,
): unknown[] | undefined {
  if (!base) return undefined;
  if (base.version === version)
    return xmin === undefined || base.xmin === xmin ? base.items.slice() : undefined;
  const prefix = base.prefixes?.find(
    (p) => p.version === version && (xmin === undefined || p.xmin === xmin),
  );
  return prefix ? base.items.slice(0, prefix.length) : undefined;
}

export async function decodeWrites(
  codec: PayloadCodec,
  rows: StoredWrite[],
): Promise<CheckpointPendingWrite[]> {
  if (rows.length === 0) return [];
  const keyed = rows.map((w) => ({ key: writesSortKey(w.taskPath, w.taskId, w.idx), w }));
  keyed.sort((a, b) => compareWritesSortKeys(a.key, b.key));
  const decoded = keyed.map(({ w }) => codec.decode(w.type, w.txt, w.b64));
  // Awaited only where the serializer's async path decoded a value.
  const values = decoded.some(isPromise) ? await Promise.all(decoded) : decoded;
  return keyed.map(({ w }, i): CheckpointPendingWrite => [w.taskId, w.channel, values[i]]);
}

/** Checkpoints before format v4 kept pending sends as TASKS writes of their parent. */
async function migratePendingSends(
  ctx: AssembleContext,
  checkpoint: Checkpoint,
  threadId: string,
  ns: string,
  parentId: string,
): Promise<void> {
  const sends = await decodeWrites(ctx.codec, await ctx.pendingSends(threadId, ns, parentId));
  checkpoint.channel_values[TASKS] = sends.map(([, , value]) => value);
  const versions = Object.values(checkpoint.channel_versions);
  checkpoint.channel_versions[TASKS] =
    versions.length > 0 ? maxChannelVersion(...versions) : ctx.nextVersion(undefined);
}

/**
 * Turns the rows of a load query into tuples, newest first, decoding each blob once:
 * consecutive checkpoints that share a channel version (or, through deltas, a prefix of it)
 * share the decoded objects.
 *
 * @param rememberBases record the arrays read as delta bases (only for the latest checkpoint:
 *   reading an older one must not displace what the next write extends).
 * @param held the arrays the query was told this process holds (answered by `held` rows).
 */
export async function assembleTuples(
  ctx: AssembleContext,
  rows: readonly LoadedRow[],
  rememberBases: boolean,
  held: Map<string, DeltaBase> | undefined,
): Promise<CheckpointTuple[]> {
  const { codec } = ctx;
  const checkpoints: CheckpointRow[] = [];
  const blobs = new Map<string, BlobRow>();
  const confirmed = new Set<string>();
  const writes = new Map<string, StoredWrite[]>();
  for (const row of rows) {
    switch (row.kind) {
      case "checkpoint":
        checkpoints.push(row);
        break;
      case "blob":
        blobs.set(blobKey(row.threadId, row.ns, row.channel, row.version), row);
        break;
      case "held":
        confirmed.add(blobKey(row.threadId, row.ns, row.channel, row.version));
        break;
      case "write": {
        const key = cpKey(row.threadId, row.ns, row.checkpointId);
        let list = writes.get(key);
        if (!list) writes.set(key, (list = []));
        list.push(row);
        break;
      }
    }
  }
  if (checkpoints.length === 0) return [];
  checkpoints.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));

  // Decoded values by blob key; a Promise only where the serializer's async path decoded one.
  const values = new Map<string, unknown>();
  /**
   * The value of a blob: a delta chain is walked down to the nearest row already decoded, held
   * by this process or stored whole, then extended up to the wanted version, each version's
   * array kept for the listed checkpoints that want it. Synchronous unless the serializer's
   * async path decodes one of the rows (no promise per chain row).
   */
  const resolve = (threadId: string, ns: string, channel: string, version: string): unknown => {
    const deltas: BlobRow[] = [];
    let base: unknown;
    for (let v = version; ;) {
      const key = blobKey(threadId, ns, channel, v);
      if (values.has(key)) {
        base = values.get(key);
        break;
      }
      const row = blobs.get(key);
      if (!row) {
        throw new ThreadlineError(
          "DATA_CORRUPT",
          `blob ${channel}@${v} of thread ${threadId} is missing`,
        );
      }
      const known =
        held && row.xmin !== null ? heldValue(held.get(channel), v, row.xmin) : undefined;
      if (known) base = known;
      else if (!row.type.startsWith("delta")) base = codec.decode(row.type, row.txt, row.b64);
      else {
        if (row.base === null || deltas.length > 100_000) {
          throw new ThreadlineError("DATA_CORRUPT", `delta ${channel}@${v} has no base`);
        }
        deltas.push(row);
        v = row.base;
        continue;
      }
      values.set(key, base);
      break;
    }
    for (let i = deltas.length - 1; i >= 0; i--) {
      const row = deltas[i]!;
      const suffix = codec.decode(row.type, row.txt, row.b64);
      base =
        isPromise(base) || isPromise(suffix)
          ? Promise.all([base, suffix]).then(([b, s]) => extend(b, s, channel, row.version))
          : extend(base, suffix, channel, row.version);
      values.set(blobKey(threadId, ns, channel, row.version), base);
    }
    return base;
  };

  const tuples: CheckpointTuple[] = [];
  for (const row of checkpoints) {
    let checkpoint: Checkpoint;
    try {
      checkpoint = JSON.parse(row.checkpoint) as Checkpoint;
    } catch (err) {
      throw new ThreadlineError("DATA_CORRUPT", `checkpoint ${row.id} is not valid JSON`, {
        cause: err,
      });
    }
    // Delta storage leaves out the id (it is the checkpoint_id column).
    checkpoint.id ??= row.id;
    checkpoint.channel_versions ??= {};
    checkpoint.versions_seen ??= {};
    const channelValues: Record<string, unknown> = {};
    await Promise.all(
      Object.entries(checkpoint.channel_versions).map(async ([channel, version]) => {
        const key = blobKey(row.threadId, row.ns, channel, String(version));
        if (confirmed.has(key)) {
          // Confirmed rows are exactly the ones the query was told this process holds.
          const mine = heldValue(held?.get(channel), String(version));
          if (!mine) throw new ThreadlineError("DATA_CORRUPT", `held ${channel}@${version} lost`);
          channelValues[channel] = mine;
          return;
        }
        const blob = blobs.get(key);
        // Like the official saver: a version without a blob row (or an "empty" one) is absent.
        if (!blob || blob.type === "empty") return;
        const resolved = resolve(row.threadId, row.ns, channel, String(version));
        const value = isPromise(resolved) ? await resolved : resolved;
        // Each tuple gets its own array; the elements are shared.
        channelValues[channel] = Array.isArray(value) ? value.slice() : value;
        if (rememberBases && ctx.storage === "delta" && Array.isArray(value)) {
          ctx.deltas.set(row.threadId, row.ns, channel, {
            version: String(version),
            root: blob.root ?? String(version),
            items: value.slice(),
            depth: chainDepth(blobs, row.threadId, row.ns, channel, blob),
            ...(blob.xmin !== null ? { xmin: blob.xmin } : {}),
          });
        }
      }),
    );
    checkpoint.channel_values = channelValues;

    const pendingWrites = await decodeWrites(
      codec,
      writes.get(cpKey(row.threadId, row.ns, row.id)) ?? [],
    );
    if (checkpoint.v < 4 && row.parentId)
      await migratePendingSends(ctx, checkpoint, row.threadId, row.ns, row.parentId);

    const metadata = (await codec.decode("json", row.metadata, null)) as CheckpointMetadata;
    const tuple: CheckpointTuple = {
      config: {
        configurable: { thread_id: row.threadId, checkpoint_ns: row.ns, checkpoint_id: row.id },
      },
      checkpoint,
      metadata,
      pendingWrites,
    };
    if (row.parentId) {
      tuple.parentConfig = {
        configurable: {
          thread_id: row.threadId,
          checkpoint_ns: row.ns,
          checkpoint_id: row.parentId,
        },
      };
    }
    tuples.push(tuple);
  }
  return tuples;
}

/** A row of the delta-history statement: an ancestor's write (kind 1) or stored value (kind 2). */
export interface DeltaHistoryRow {
  kind: number;
  depth: number;
  task_id: string | null;
  channel: string;
  type: string;
  task_path: string | null;
  idx: number | null;
  txt: string | null;
  b64: string | null;
}

/**
 * The base class's `getDeltaChannelHistory` result from the rows of one statement: per channel,
 * the ancestors' writes oldest first (each ancestor's in `writesSortKey` order) and the value the
 * walk stopped at. Undefined when a stored value is itself a delta row (a channel that held a
 * plain array before it became a DeltaChannel): its chain is not in these rows, and the caller
 * walks the checkpoints instead.
 */
export async function assembleDeltaHistory(
  codec: PayloadCodec,
  channels: readonly string[],
  rows: readonly DeltaHistoryRow[],
): Promise<Record<string, DeltaChannelHistory> | undefined> {
  const byDepth = new Map<number, StoredWrite[]>();
  const seeds = new Map<string, DeltaHistoryRow>();
  for (const row of rows) {
    if (row.kind === 2) {
      if (row.type.startsWith("delta")) return undefined;
      seeds.set(row.channel, row);
      continue;
    }
    let block = byDepth.get(row.depth);
    if (!block) byDepth.set(row.depth, (block = []));
    block.push({
      taskId: row.task_id ?? "",
      channel: row.channel,
      type: row.type,
      taskPath: row.task_path ?? "",
      idx: row.idx ?? 0,
      txt: row.txt,
      b64: row.b64,
    });
  }
  const result: Record<string, DeltaChannelHistory> = {};
  for (const ch of channels) result[ch] = { writes: [] };
  // Oldest ancestor first, as the reducer replays them.
  for (const depth of [...byDepth.keys()].sort((a, b) => b - a)) {
    for (const write of await decodeWrites(codec, byDepth.get(depth)!)) {
      result[write[1]]?.writes.push(write);
    }
  }
  for (const [ch, row] of seeds) {
    const entry = result[ch];
    if (entry) entry.seed = await codec.decode(row.type, row.txt, row.b64);
  }
  return result;
}

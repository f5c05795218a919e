import { TASKS, WRITES_IDX_MAP } from "@langchain/langgraph-checkpoint";
import {
  type DecodedRecord,
  type SourceBlob,
  type SourceCheckpoint,
  type SourceFormat,
  type SourceWrite,
} from "./types.js";
import {
  addFlag,
  convertVersions,
  convertVersionsSeen,
  normalizeValue,
  type ValueFlags,
} from "./values.js";

/** `latest`: the latest checkpoint of each namespace with its pending writes; `full`: all. */
export type HistoryMode = "latest" | "full";

/** Everything the source holds for one thread, gathered from all its keys. */
export interface ThreadSource {
  threadId: string;
  checkpoints: Map<string, SourceCheckpoint>;
  blobs: Map<string, SourceBlob>;
  writes: Map<string, SourceWrite>;
  /** Formats of its checkpoint documents. */
  formats: Set<SourceFormat>;
  flags: ValueFlags;
  /** Keys of the thread that could not be decoded; set means the thread is rejected. */
  rejection?: { key: string; reason: string };
}

const sep = "\u0000";
const NOT_FOUND = Symbol("no value");

/** A source version as map key text (blob docs carry it as text, checkpoints as number or text). */
function versionKey(version: unknown): string {
  return typeof version === "string" || typeof version === "number"
    ? String(version)
    : JSON.stringify(version);
}

/** Groups decoded records by the thread id their documents name. */
export class ThreadCollector {
  readonly threads = new Map<string, ThreadSource>();

  private thread(threadId: string): ThreadSource {
    let t = this.threads.get(threadId);
    if (!t) {
      t = {
        threadId,
        checkpoints: new Map(),
        blobs: new Map(),
        writes: new Map(),
        formats: new Set(),
        flags: new Map(),
      };
      this.threads.set(threadId, t);
    }
    return t;
  }

  /** Adds one decoded record to its thread. */
  add(record: DecodedRecord): void {
    const threadId =
      record.kind === "checkpoint"
        ? record.checkpoint.threadId
        : record.kind === "blob"
          ? record.blob.threadId
          : record.write.threadId;
    const t = this.thread(threadId);
    for (const [flag, n] of record.flags) addFlag(t.flags, flag, n);
    if (record.kind === "checkpoint") {
      const cp = record.checkpoint;
      t.formats.add(record.format);
      t.checkpoints.set(`${cp.ns}${sep}${cp.id}`, cp);
    } else if (record.kind === "blob") {
      const b = record.blob;
      t.blobs.set(`${b.ns}${sep}${b.channel}${sep}${b.version}`, b);
    } else {
      const w = record.write;
      t.writes.set(`${w.ns}${sep}${w.checkpointId}${sep}${w.taskId}${sep}${w.idx}`, w);
    }
  }

  /** Marks a thread rejected (the first reason wins). */
  reject(threadId: string, key: string, reason: string): void {
    const t = this.thread(threadId);
    t.rejection ??= { key, reason };
  }
}

/** One checkpoint row to write, values still JSON-shaped (serialized by the writer). */
export interface PlannedCheckpoint {
  ns: string;
  id: string;
  parentId: string | null;
  /** The checkpoint without channel_values, versions as integers (the JSONB column). */
  checkpoint: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/** One blob row: a channel value at one version (`EMPTY` for an explicitly empty channel). */
export interface PlannedBlob {
  ns: string;
  channel: string;
  version: number;
  value: unknown;
}

/** One pending-write row. */
export interface PlannedWrite {
  ns: string;
  checkpointId: string;
  taskId: string;
  taskPath: string;
  idx: number;
  channel: string;
  value: unknown;
}

/** What will be written for one thread. */
export interface ThreadPlan {
  threadId: string;
  formats: SourceFormat[];
  checkpoints: PlannedCheckpoint[];
  blobs: PlannedBlob[];
  writes: PlannedWrite[];
  /** Source times (ISO) of the first and last checkpoint, for the thread's TTL clock. */
  createdAt: string | null;
  lastActivity: string | null;
  /** Identifies the source state imported: history mode plus the latest id per namespace. */
  fingerprint: string;
  /** Checkpoints the source holds for the thread (all namespaces). */
  sourceCheckpoints: number;
  /** Channels with a version but no value in the source (trigger channels, expired blobs). */
  channelsWithoutValue: number;
  /** Writes whose checkpoint is not in the source (orphans of older saver versions). */
  orphanWrites: number;
  flags: ValueFlags;
}

/**
 * Turns a thread's source records into the rows to write: picks the checkpoints (`history`),
 * rebuilds each one's full channel values, converts versions, and attaches pending writes.
 *
 * Channel values are looked up by (namespace, channel, source version): inline values first
 * (blobs first for Python 0.0.x, whose reader preferred them), then blob documents, then the
 * inline value of any other checkpoint with the same version - which is how the state of a JS
 * RedisSaver <= 1.0.9 checkpoint (only changed channels inline, no blobs) is rebuilt.
 */
export function planThread(source: ThreadSource, history: HistoryMode): ThreadPlan {
  const byNs = new Map<string, SourceCheckpoint[]>();
  for (const cp of source.checkpoints.values()) {
    const list = byNs.get(cp.ns) ?? [];
    list.push(cp);
    byNs.set(cp.ns, list);
  }
  // Inline values indexed by version, oldest checkpoint first (equal versions hold equal values).
  const inline = new Map<string, unknown>();
  const chosen: SourceCheckpoint[] = [];
  const latestIds: string[] = [];
  for (const [ns, list] of [...byNs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // uuid6 ids sort by time, which is also how Postgres savers pick the latest (ORDER BY id).
    list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const cp of list) {
      for (const [channel, value] of cp.inlineValues) {
        const version = cp.channelVersions[channel];
        if (version === undefined) continue;
        const k = `${ns}${sep}${channel}${sep}${versionKey(version)}`;
        if (!inline.has(k)) inline.set(k, value);
      }
    }
    const latest = list[list.length - 1]!;
    latestIds.push(`${ns}=${latest.id}`);
    if (history === "full") chosen.push(...list);
    else chosen.push(latest);
  }

  // Inline values are normalised on first use (once per value object, which ancestors share).
  const normalized = new Map<unknown, unknown>();
  const norm = (raw: unknown): unknown => {
    if (raw === null || typeof raw !== "object") return normalizeValue(raw, source.flags);
    if (!normalized.has(raw)) normalized.set(raw, normalizeValue(raw, source.flags));
    return normalized.get(raw);
  };
  // Returns NOT_FOUND when no source holds the value (no closures: this runs per channel).
  const lookup = (cp: SourceCheckpoint, channel: string, version: unknown): unknown => {
    const k = `${cp.ns}${sep}${channel}${sep}${versionKey(version)}`;
    const blob = source.blobs.get(k);
    if (cp.blobsWin && blob) return blob.load(source.flags);
    if (cp.inlineValues.has(channel)) return norm(cp.inlineValues.get(channel));
    if (blob) return blob.load(source.flags);
    return inline.has(k) ? norm(inline.get(k)) : NOT_FOUND;
  };

  const checkpoints: PlannedCheckpoint[] = [];
  const blobs = new Map<string, PlannedBlob>();
  let channelsWithoutValue = 0;
  for (const cp of chosen) {
    const versions = convertVersions(cp.channelVersions, `checkpoint ${cp.id}`);
    const base = { ...cp.base };
    if (cp.base.v < 4) upgradeToV4(source, cp, base, versions, blobs);
    for (const [channel, raw] of Object.entries(cp.channelVersions)) {
      const version = versions[channel]!;
      const bk = `${cp.ns}${sep}${channel}${sep}${version}`;
      if (blobs.has(bk)) continue;
      const value = lookup(cp, channel, raw);
      if (value === NOT_FOUND) {
        channelsWithoutValue++;
        continue;
      }
      blobs.set(bk, { ns: cp.ns, channel, version, value });
    }
    checkpoints.push({
      ns: cp.ns,
      id: cp.id,
      parentId: cp.parentId,
      checkpoint: {
        ...base,
        channel_versions: versions,
        versions_seen: convertVersionsSeen(cp.versionsSeen),
      },
      metadata: cp.metadata,
    });
  }

  const chosenIds = new Set(chosen.map((cp) => `${cp.ns}${sep}${cp.id}`));
  const writes: PlannedWrite[] = [];
  let orphanWrites = 0;
  for (const w of source.writes.values()) {
    const ck = `${w.ns}${sep}${w.checkpointId}`;
    if (!source.checkpoints.has(ck)) orphanWrites++;
    if (!chosenIds.has(ck)) continue;
    writes.push({
      ns: w.ns,
      checkpointId: w.checkpointId,
      taskId: w.taskId,
      taskPath: w.taskPath,
      // Special channels live at fixed negative indexes, as every LangGraph saver writes them.
      idx: WRITES_IDX_MAP[w.channel] ?? w.idx,
      channel: w.channel,
      value: w.load(source.flags),
    });
  }

  let first: number | undefined;
  let last: number | undefined;
  for (const cp of source.checkpoints.values()) {
    if (cp.activityMs === undefined) continue;
    first = first === undefined ? cp.activityMs : Math.min(first, cp.activityMs);
    last = last === undefined ? cp.activityMs : Math.max(last, cp.activityMs);
  }
  return {
    threadId: source.threadId,
    formats: [...source.formats].sort(),
    checkpoints,
    blobs: [...blobs.values()],
    writes,
    createdAt: first === undefined ? null : new Date(first).toISOString(),
    lastActivity: last === undefined ? null : new Date(last).toISOString(),
    fingerprint: `${history}|${latestIds.join("|")}`,
    sourceCheckpoints: source.checkpoints.size,
    channelsWithoutValue,
    orphanWrites,
    flags: source.flags,
  };
}

/**
 * Checkpoints before format v4 (Python 0.0.x wrote v3) kept pending sends out of the state: a
 * v4 reader finds them in the parent's `__pregel_tasks` writes. The Postgres savers redo this on
 * every read of a v < 4 checkpoint, and only when the parent's writes were imported too; doing
 * it once here stores the checkpoint as v4 with its sends (if any) in the TASKS channel, exactly
 * what LangGraph's own migration produces, whichever history mode is used.
 */
function upgradeToV4(
  source: ThreadSource,
  cp: SourceCheckpoint,
  base: PlannedCheckpoint["checkpoint"],
  versions: Record<string, number>,
  blobs: Map<string, PlannedBlob>,
): void {
  base.v = 4;
  if (cp.parentId === null) return;
  const sends = [...source.writes.values()]
    .filter((w) => w.ns === cp.ns && w.checkpointId === cp.parentId && w.channel === TASKS)
    .sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : a.idx - b.idx))
    .map((w) => w.load(source.flags));
  if (sends.length === 0) return;
  const version = Math.max(0, ...Object.values(versions));
  versions[TASKS] = version;
  blobs.set(`${cp.ns}${sep}${TASKS}${sep}${version}`, {
    ns: cp.ns,
    channel: TASKS,
    version,
    value: sends,
  });
}

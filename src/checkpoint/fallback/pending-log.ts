import type { ChannelVersions } from "@langchain/langgraph-checkpoint";

/** A value as the serializer produced it: `[type, bytes]`, or `["json", text]` from the fast
 * encoder (the text JsonPlusSerializer's bytes decode to; no copy into bytes, decision H49).
 * Pending entries (acknowledged but only in memory) are held this way, so nothing a caller
 * mutates afterwards changes them. */
export type Serialized = [string, Uint8Array | string];

/** One element of a pending array channel, serialized once and shared by every version holding it. */
export class SerializedItem {
  constructor(readonly value: Serialized) {}
}

/**
 * A checkpoint acknowledged during an outage. Array channels (messages) are held element by
 * element: an element already durable in Postgres (the prefix the thread had before the outage)
 * is kept as the object itself, every other element as a {@link SerializedItem} that later
 * versions share. A thread's pending bytes therefore grow with its length, not its square, and
 * the replayed versions share their elements, so the primary stores them as deltas.
 */
export interface PendingCheckpoint {
  /** The checkpoint without its array channel values. */
  rest: Serialized;
  /** Array channel values: durable elements as themselves, the others serialized. */
  arrays: Record<string, unknown[]>;
  /** Bytes this checkpoint added: `rest` plus the elements it serialized first, plus references. */
  bytes: number;
}

/** One operation acknowledged in fallback mode and not yet replayed to Postgres. */
export type PendingOp =
  | {
      kind: "put";
      seq: number;
      threadId: string;
      ns: string;
      parentId: string | undefined;
      checkpointId: string;
      checkpoint: PendingCheckpoint;
      metadata: Serialized;
      newVersions: ChannelVersions;
      entries: number;
      bytes: number;
      failures: number;
    }
  | {
      kind: "putWrites";
      seq: number;
      threadId: string;
      ns: string;
      checkpointId: string;
      taskId: string;
      taskPath: string;
      writes: Array<[string, Serialized]>;
      entries: number;
      bytes: number;
      failures: number;
    }
  | {
      kind: "deleteThread";
      seq: number;
      threadId: string;
      entries: number;
      bytes: number;
      failures: number;
    };

/** A {@link PendingOp} before the log numbers it. */
export type NewPendingOp = PendingOp extends infer T
  ? T extends PendingOp
    ? Omit<T, "seq" | "failures">
    : never
  : never;

/**
 * The ordered log of operations acknowledged during an outage, in acknowledgement order. The
 * replay reads it from the head; an operation leaves it when replayed, given up, or superseded
 * by a delete of its thread.
 *
 * It is the only source of the pending counts the checkpointer reports (`status().pending`,
 * `pendingBytes`, the metrics, the FALLBACK_FULL limits) and of "this thread still replays":
 * {@link entries}, {@link bytes} and {@link countOf} change only where an operation enters or
 * leaves the log, by that operation's own `entries` and `bytes`, so they cannot drift from what
 * the replay still has to send (before, the memory store kept counts of its own and repaired
 * them once the log was empty).
 */
export class PendingLog {
  private readonly ops = new Map<number, PendingOp>();
  /** Operations in the log per thread: one source of truth for "this thread still replays". */
  private readonly perThread = new Map<string, number>();
  /** Callers waiting for a thread to have nothing logged (see {@link whenClear}). */
  private readonly waiters = new Map<string, Array<() => void>>();
  private nextSeq = 1;
  private entryCount = 0;
  private byteCount = 0;

  /** Operations in the log. */
  get size(): number {
    return this.ops.size;
  }

  /** Entries (checkpoints, writes, deletes) of the operations in the log: `status().pending`. */
  get entries(): number {
    return this.entryCount;
  }

  /** Bytes of the operations in the log: `status().pendingBytes`. */
  get bytes(): number {
    return this.byteCount;
  }

  /** Appends an operation; returns it numbered. */
  append(op: NewPendingOp): PendingOp {
    const seq = this.nextSeq++;
    const logged: PendingOp = { ...op, seq, failures: 0 };
    this.ops.set(seq, logged);
    this.perThread.set(op.threadId, (this.perThread.get(op.threadId) ?? 0) + 1);
    this.entryCount += op.entries;
    this.byteCount += op.bytes;
    return logged;
  }

  /** Operations of `threadId` in the log. */
  countOf(threadId: string): number {
    return this.perThread.get(threadId) ?? 0;
  }

  /** Threads someone waits for (the replay takes them first). */
  get awaited(): ReadonlySet<string> {
    return new Set(this.waiters.keys());
  }

  /**
   * Resolves once `threadId` has nothing logged (at once when it has nothing now), or when
   * {@link releaseWaiters} is called.
   */
  whenClear(threadId: string): Promise<void> {
    if (this.countOf(threadId) === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const list = this.waiters.get(threadId);
      if (list) list.push(resolve);
      else this.waiters.set(threadId, [resolve]);
    });
  }

  /** Wakes every waiter (the replay round ended; they look at the state again). */
  releaseWaiters(): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const list of all) for (const resolve of list) resolve();
  }

  private removed(op: PendingOp): void {
    this.entryCount -= op.entries;
    this.byteCount -= op.bytes;
    const left = (this.perThread.get(op.threadId) ?? 1) - 1;
    if (left > 0) {
      this.perThread.set(op.threadId, left);
      return;
    }
    this.perThread.delete(op.threadId);
    const list = this.waiters.get(op.threadId);
    this.waiters.delete(op.threadId);
    for (const resolve of list ?? []) resolve();
  }

  /** Whether `op` (this very object) is still in the log. */
  holds(op: PendingOp): boolean {
    return this.ops.get(op.seq) === op;
  }

  /** Removes `op`; false when it was no longer there. */
  remove(op: PendingOp): boolean {
    if (!this.holds(op)) return false;
    this.ops.delete(op.seq);
    this.removed(op);
    return true;
  }

  /** True when some logged operation matches. */
  some(pred: (op: PendingOp) => boolean): boolean {
    for (const op of this.ops.values()) if (pred(op)) return true;
    return false;
  }

  /** The first `limit` operations (a snapshot; safe to iterate while the log changes). */
  head(limit = Number.POSITIVE_INFINITY): PendingOp[] {
    const out: PendingOp[] = [];
    for (const op of this.ops.values()) {
      if (out.length >= limit) break;
      out.push(op);
    }
    return out;
  }

  /** Drops the thread's puts and writes (a delete of the thread supersedes them). */
  dropThread(threadId: string): void {
    for (const [seq, op] of this.ops) {
      if (op.threadId === threadId && op.kind !== "deleteThread") {
        this.ops.delete(seq);
        this.removed(op);
      }
    }
  }

  /** Drops everything. */
  clear(): void {
    this.ops.clear();
    this.perThread.clear();
    this.entryCount = 0;
    this.byteCount = 0;
    this.releaseWaiters();
  }
}

import type { ChannelVersions } from "@langchain/langgraph-checkpoint";

/** A value as the serializer produced it: `[type, bytes]`. Pending entries (acknowledged but
 * only in memory) are held this way, so nothing a caller mutates afterwards changes them. */
export type Serialized = [string, Uint8Array];

/** One operation acknowledged in fallback mode and not yet replayed to Postgres. */
export type PendingOp =
  | {
      kind: "put";
      seq: number;
      threadId: string;
      ns: string;
      parentId: string | undefined;
      checkpointId: string;
      checkpoint: Serialized;
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
 */
export class PendingLog {
  private readonly ops = new Map<number, PendingOp>();
  private nextSeq = 1;

  /** Operations in the log. */
  get size(): number {
    return this.ops.size;
  }

  /** Appends an operation; returns it numbered. */
  append(op: NewPendingOp): PendingOp {
    const seq = this.nextSeq++;
    const logged: PendingOp = { ...op, seq, failures: 0 };
    this.ops.set(seq, logged);
    return logged;
  }

  /** Whether `op` (this very object) is still in the log. */
  holds(op: PendingOp): boolean {
    return this.ops.get(op.seq) === op;
  }

  /** Removes `op`; false when it was no longer there. */
  remove(op: PendingOp): boolean {
    if (!this.holds(op)) return false;
    this.ops.delete(op.seq);
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
      if (op.threadId === threadId && op.kind !== "deleteThread") this.ops.delete(seq);
    }
  }

  /** Drops everything. */
  clear(): void {
    this.ops.clear();
  }
}

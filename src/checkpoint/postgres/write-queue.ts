/** One pending write, serialized, waiting for the statement that stores it. */
export interface QueuedWrite {
  threadId: string;
  ns: string;
  checkpointId: string;
  taskId: string;
  taskPath: string;
  idx: number;
  channel: string;
  type: string;
  txt: string | null;
  b64: string | null;
}

/** The writes of one putWrites call and the promise its caller awaits. */
export interface WriteBatch {
  threadId: string;
  ns: string;
  rows: QueuedWrite[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Client-side group commit for putWrites. LangGraph saves a thread's checkpoints one after
 * another (each put is issued once the previous one is acknowledged) and issues the writes of a
 * step while the previous put may still be in flight. Writes that arrive while a put of their
 * thread is in flight wait for it and ride with the next put in the same statement: one round
 * trip and one WAL flush instead of one per call. If no put takes them, they are sent on their
 * own as soon as the event loop is idle. Either way a call is acknowledged only once its rows are
 * committed. Writes for a thread with no put in flight are not queued at all.
 */
export class WriteQueue {
  private readonly byThread = new Map<string, WriteBatch[]>();
  /** Puts in flight per thread: their threads' writes wait for the put that follows them. */
  private readonly putsInFlight = new Map<string, number>();
  private scheduled: NodeJS.Immediate | undefined;

  /** @param flush stores batches and settles them; must not throw. */
  constructor(private readonly flush: (batches: WriteBatch[]) => Promise<void>) {}

  /** Whether writes of the thread should wait (a put of it is in flight). */
  holds(threadId: string): boolean {
    return this.putsInFlight.has(threadId);
  }

  /** Queues the rows of one call; resolves when they are committed. */
  add(threadId: string, ns: string, rows: QueuedWrite[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.byThread.get(threadId);
      if (!list) this.byThread.set(threadId, (list = []));
      list.push({ threadId, ns, rows, resolve, reject });
      if (!this.putsInFlight.has(threadId)) this.schedule();
    });
  }

  /**
   * Marks a put of the thread as pending (from the call on). LangGraph issues a thread's puts one after another, each
   * as soon as the previous one is acknowledged, so writes queued meanwhile wait for that next
   * put instead of taking a commit of their own.
   */
  putStarted(threadId: string): void {
    this.putsInFlight.set(threadId, (this.putsInFlight.get(threadId) ?? 0) + 1);
  }

  /** Marks a put as settled; its thread's queued writes go with the next put or on their own. */
  putSettled(threadId: string): void {
    const n = (this.putsInFlight.get(threadId) ?? 1) - 1;
    if (n > 0) this.putsInFlight.set(threadId, n);
    else this.putsInFlight.delete(threadId);
    // The next put is issued in the microtasks that follow this one's acknowledgement, before
    // the check phase runs the flush.
    if (n <= 0 && this.byThread.has(threadId)) this.schedule();
  }

  private schedule(): void {
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      const due: WriteBatch[] = [];
      for (const threadId of [...this.byThread.keys()]) {
        if (!this.putsInFlight.has(threadId)) due.push(...this.take(threadId));
      }
      if (due.length > 0) void this.flush(due);
    });
  }

  /** Removes and returns the queued batches of a thread (of one namespace when `ns` is given). */
  take(threadId: string, ns?: string): WriteBatch[] {
    const list = this.byThread.get(threadId);
    if (!list) return [];
    if (ns === undefined) {
      this.byThread.delete(threadId);
      return list;
    }
    const taken = list.filter((b) => b.ns === ns);
    if (taken.length === list.length) this.byThread.delete(threadId);
    else if (taken.length > 0)
      this.byThread.set(
        threadId,
        list.filter((b) => b.ns !== ns),
      );
    return taken;
  }

  /** Removes and returns every queued batch. */
  takeAll(): WriteBatch[] {
    const all = [...this.byThread.values()].flat();
    this.byThread.clear();
    return all;
  }

  has(threadId: string): boolean {
    return this.byThread.has(threadId);
  }

  get size(): number {
    return this.byThread.size;
  }
}

/**
 * The rows of several batches as one statement stores them: the contract's overwrite rules
 * applied across calls (a special channel's slot, idx < 0, keeps the last value; any other slot
 * keeps the first), so no row is inserted twice by one statement.
 */
export function mergeWrites(batches: WriteBatch[]): QueuedWrite[] {
  if (batches.length === 1) return batches[0]!.rows;
  const byKey = new Map<string, QueuedWrite>();
  for (const batch of batches) {
    for (const row of batch.rows) {
      const key = `${row.threadId}\u0000${row.ns}\u0000${row.checkpointId}\u0000${row.taskId}\u0000${row.idx}`;
      if (row.idx < 0 || !byKey.has(key)) byKey.set(key, row);
    }
  }
  return [...byKey.values()];
}

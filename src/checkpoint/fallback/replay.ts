import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type { Logger } from "../../logger.js";
import type { FallbackStore } from "./memory-store.js";
import type { PendingOp } from "./pending-log.js";

/** A replayed operation refused this many times (for a reason other than reachability) is given up. */
const MAX_REPLAY_FAILURES = 3;

/** What the replay needs from its checkpointer. */
export interface ReplayDeps {
  store: FallbackStore;
  primary: BaseCheckpointSaver;
  /** One primary call, retried and bounded as the checkpointer's own calls are. */
  call<T>(op: () => Promise<T>): Promise<T>;
  /** Whether an error means the primary is unreachable (stops the round). */
  isOutage(err: unknown): boolean;
  /** Operations replayed concurrently (different threads only). */
  concurrency: number;
  logger: Logger;
  /** True once the checkpointer is closing: the replay stops between operations. */
  closed(): boolean;
  /** Entries now durable in Postgres. */
  onReplayed(entries: number): void;
  /** Entries Postgres refused and that were given up. */
  onFailed(entries: number): void;
  /** A short description of an error, without SQL or data. */
  describe(err: unknown): string;
}

/**
 * Replays the log until it is empty. Each pass takes the whole log, grouped by thread: a thread's
 * operations run in acknowledgement order through the primary's own methods (so a Postgres
 * primary plans each put against the one before it and stores deltas), while up to
 * `concurrency` threads run at once, each worker taking the next thread as soon as it is done
 * (threads a caller is waiting for first, see FallbackCheckpointer's replay routing). A
 * connection-level failure stops the round (the next probe resumes it); so does a refusal that
 * may be transient, until the same operation was refused {@link MAX_REPLAY_FAILURES} times.
 */
export async function replayLog(deps: ReplayDeps): Promise<void> {
  const { store } = deps;
  for (;;) {
    if (deps.closed()) return;
    const snapshot = store.pendingOps();
    if (snapshot.length === 0) return;
    const groups = new Map<string, PendingOp[]>();
    for (const op of snapshot) {
      let g = groups.get(op.threadId);
      if (!g) groups.set(op.threadId, (g = []));
      g.push(op);
    }
    let stop: Error | undefined;
    const order = groups.keys();
    const next = (): PendingOp[] | undefined => {
      for (const awaited of store.awaitedThreads) {
        const g = groups.get(awaited);
        if (g) {
          groups.delete(awaited);
          return g;
        }
      }
      for (let r = order.next(); !r.done; r = order.next()) {
        const g = groups.get(r.value);
        if (g) {
          groups.delete(r.value);
          return g;
        }
      }
      return undefined;
    };
    const worker = async () => {
      for (let group = next(); group && stop === undefined; group = next()) {
        for (const op of group) {
          if (stop !== undefined || deps.closed()) return;
          try {
            await deps.call(() => replayOne(deps, op));
            if (store.complete(op)) deps.onReplayed(op.entries);
          } catch (err) {
            const error = err instanceof Error ? err : new Error(String(err));
            if (deps.isOutage(err)) {
              stop = error;
              return;
            }
            op.failures += 1;
            if (op.failures >= MAX_REPLAY_FAILURES) {
              // Postgres answers but refuses this entry: holding it would block the thread's
              // replay forever. Give it up loudly instead of silently.
              deps.logger.error(
                { err: { message: deps.describe(err) }, threadId: op.threadId, operation: op.kind },
                "Postgres refused a checkpoint acknowledged during the outage; it is not replayed",
              );
              if (store.complete(op)) deps.onFailed(op.entries);
            } else {
              // Maybe transient (a timeout, a conflict): retry with the next probe.
              stop = error;
              return;
            }
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(deps.concurrency, groups.size) }, worker));
    if (stop !== undefined) throw stop;
  }
}

/** Sends one logged operation through the primary's own method (idempotent upserts). */
async function replayOne(deps: ReplayDeps, op: PendingOp): Promise<void> {
  switch (op.kind) {
    case "put": {
      const [config, checkpoint, metadata, newVersions] = await deps.store.replayPutArgs(op);
      await deps.primary.put(config, checkpoint, metadata, newVersions);
      return;
    }
    case "putWrites": {
      const [config, writes, taskId, taskPath] = await deps.store.replayWritesArgs(op);
      await deps.primary.putWrites(config, writes, taskId, taskPath);
      return;
    }
    case "deleteThread":
      await deps.primary.deleteThread(op.threadId);
      return;
  }
}

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

/** Why a round stops: the first error that ends it (an outage, or a refusal that may pass). */
interface Round {
  stop: Error | undefined;
}

/**
 * Replays the log until it is empty. Each pass takes the whole log, grouped by thread; up to
 * `concurrency` threads run at once, each worker taking the next thread as soon as it is done
 * (threads a caller is waiting for first, see FallbackCheckpointer's routing). A connection-level
 * failure stops the round (the next probe resumes it); so does a refusal that may be transient,
 * until the same operation was refused {@link MAX_REPLAY_FAILURES} times. See
 * {@link replayThread} for the order within a thread.
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
    const round: Round = { stop: undefined };
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
      for (let group = next(); group && round.stop === undefined; group = next())
        await replayThread(deps, group, round);
    };
    await Promise.all(Array.from({ length: Math.min(deps.concurrency, groups.size) }, worker));
    if (round.stop !== undefined) throw round.stop;
  }
}

/**
 * Replays one thread's operations, pipelined as LangGraph itself writes a thread: a put is sent
 * once the thread's previous put is acknowledged (the primary plans each put against the one
 * before it and stores deltas), and the writes logged after a put are sent while the next put
 * is in flight, so a Postgres primary holds them for the put after that and stores them in its
 * statement (its write queue: one round trip and one commit instead of one per call); the last
 * writes of the thread go alone. Every checkpoint is therefore committed
 * before its writes; writes of the same task and checkpoint are sent one after another (a special
 * channel's last value wins); a delete waits for everything before it, and everything after it
 * waits for the delete.
 */
async function replayThread(deps: ReplayDeps, group: PendingOp[], round: Round): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  /** The last put sent, settled (never rejects). */
  let lastPut: Promise<void> | undefined;
  /** Writes logged since the last put sent: they go out with the next one (or at the end). */
  let deferred: Array<Extract<PendingOp, { kind: "putWrites" }>> = [];
  /** Writes in flight by `checkpoint\0task`: a later call of the same key waits for it. */
  const writesInFlight = new Map<string, Promise<void>>();
  const stopped = () => round.stop !== undefined || deps.closed();

  const send = (op: PendingOp, run: () => Promise<void>): Promise<void> => {
    const settled = deps.call(run).then(
      () => {
        if (deps.store.complete(op)) deps.onReplayed(op.entries);
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        if (deps.isOutage(err)) {
          round.stop ??= error;
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
          if (deps.store.complete(op)) deps.onFailed(op.entries);
        } else {
          // Maybe transient (a timeout, a conflict): retry with the next probe.
          round.stop ??= error;
        }
      },
    );
    inFlight.add(settled);
    void settled.then(() => inFlight.delete(settled));
    return settled;
  };

  const sendWrites = async (ops: typeof deferred, runs: Array<() => Promise<void>>) => {
    for (const [i, op] of ops.entries()) {
      const key = `${op.ns}\u0000${op.checkpointId}\u0000${op.taskId}`;
      const before = writesInFlight.get(key);
      if (before) await before;
      if (stopped()) return;
      const settled = send(op, runs[i]!);
      writesInFlight.set(key, settled);
    }
  };

  const flushDeferred = async () => {
    const ops = deferred;
    deferred = [];
    if (ops.length === 0 || stopped()) return;
    const runs = await Promise.all(ops.map((op) => prepare(deps, op)));
    await sendWrites(ops, runs);
  };

  for (const op of group) {
    if (stopped()) break;
    if (op.kind === "putWrites") {
      deferred.push(op);
      continue;
    }
    if (op.kind === "put") {
      // Decoded while the previous put is in flight; sent once it is acknowledged.
      const [run, writeRuns] = await Promise.all([
        prepare(deps, op),
        Promise.all(deferred.map((w) => prepare(deps, w))),
      ]);
      if (lastPut) await lastPut;
      if (stopped()) break;
      lastPut = send(op, run);
      // Sent while that put is in flight: a Postgres primary holds them for the next put.
      const writes = deferred;
      deferred = [];
      await sendWrites(writes, writeRuns);
      continue;
    }
    // deleteThread: after everything before it, before anything after it.
    await flushDeferred();
    await Promise.all(inFlight);
    if (stopped()) break;
    await send(op, await prepare(deps, op));
  }
  await flushDeferred();
  await Promise.all(inFlight);
}

/**
 * Decodes one logged operation into a call of the primary's own method (idempotent upserts).
 * The call itself runs when the returned function does, synchronously up to its first await,
 * so the replay decides the order in which the primary sees them.
 */
async function prepare(deps: ReplayDeps, op: PendingOp): Promise<() => Promise<void>> {
  switch (op.kind) {
    case "put": {
      const [config, checkpoint, metadata, newVersions] = await deps.store.replayPutArgs(op);
      return async () => {
        await deps.primary.put(config, checkpoint, metadata, newVersions);
      };
    }
    case "putWrites": {
      const [config, writes, taskId, taskPath] = await deps.store.replayWritesArgs(op);
      return () => deps.primary.putWrites(config, writes, taskId, taskPath);
    }
    case "deleteThread":
      return () => deps.primary.deleteThread(op.threadId);
  }
}

import { AsyncLocalStorage } from "node:async_hooks";
import type { RunnableConfig } from "@langchain/core/runnables";
import type {
  BaseCheckpointSaver,
  ChannelVersions,
  Checkpoint,
  CheckpointMetadata,
  CheckpointTuple,
  PendingWrite,
} from "@langchain/langgraph-checkpoint";
import { ForwardingSaver } from "../checkpoint/forwarding-saver.js";

/**
 * One chat turn's read of its thread. States: `armed` (nothing read yet) -> `kept` (the first
 * read of the thread's latest root checkpoint is kept) -> `used` (handed out once more, or
 * dropped by a write of the turn). Never back.
 */
interface TurnScope {
  threadId: string;
  state: "armed" | "kept" | "used";
  tuple: CheckpointTuple | undefined;
}

/** A read of the latest checkpoint of `threadId`'s root graph (no id, empty namespace). */
function isLatestRoot(config: RunnableConfig, threadId: string): boolean {
  const c = config.configurable;
  return (
    c?.thread_id === threadId &&
    c.checkpoint_id === undefined &&
    (c.checkpoint_ns === undefined || c.checkpoint_ns === "")
  );
}

/**
 * Lets a chat turn read its thread once (decision H32). `POST /api/chat` reads the thread's state
 * to build the turn's input (`graph.getState`), then starts the graph, whose loop reads the same
 * latest checkpoint again: a second statement (and decode) of what the route read a moment before
 * under the thread's lock. Inside {@link TurnReadReuse.run}, the first read of the thread's latest
 * root checkpoint is kept and handed to the next such read, once; any write of the turn, another
 * thread, a namespace or a checkpoint id go to the inner saver as always. A tuple with pending
 * writes is not kept (LangGraph's `getState` applies null-task writes to the checkpoint it read).
 * Outside a scope every call forwards unchanged.
 */
export class TurnReadReuse extends ForwardingSaver {
  private readonly scopes = new AsyncLocalStorage<TurnScope>();

  constructor(inner: BaseCheckpointSaver) {
    super(inner);
  }

  /** Runs `fn` (one turn on `threadId`) with the read reuse armed. */
  run<T>(threadId: string, fn: () => Promise<T>): Promise<T> {
    return this.scopes.run({ threadId, state: "armed", tuple: undefined }, fn);
  }

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const scope = this.scopes.getStore();
    if (!scope || scope.state === "used" || !isLatestRoot(config, scope.threadId))
      return this.inner.getTuple(config);
    if (scope.state === "kept") {
      scope.state = "used";
      const { tuple } = scope;
      scope.tuple = undefined;
      return tuple;
    }
    const tuple = await this.inner.getTuple(config);
    if (scope.state === "armed") {
      if (tuple?.pendingWrites?.length) scope.state = "used";
      else {
        scope.state = "kept";
        scope.tuple = tuple;
      }
    }
    return tuple;
  }

  override put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    this.drop();
    return this.inner.put(config, checkpoint, metadata, newVersions);
  }

  override putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath?: string,
  ): Promise<void> {
    this.drop();
    return this.inner.putWrites(config, writes, taskId, taskPath);
  }

  override deleteThread(threadId: string): Promise<void> {
    this.drop();
    return this.inner.deleteThread(threadId);
  }

  private drop(): void {
    const scope = this.scopes.getStore();
    if (!scope) return;
    scope.state = "used";
    scope.tuple = undefined;
  }
}

import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointTuple,
  type DeltaChannelHistory,
  type PendingWrite,
} from "@langchain/langgraph-checkpoint";

/**
 * A saver that forwards every method of `BaseCheckpointSaver` to an inner saver, arguments
 * unchanged. Wrappers (metrics, tracing, ...) extend it and override only what they observe, so
 * a method they do not care about (or one a new LangGraph version adds) cannot be dropped or
 * lose an argument (as `taskPath` once was).
 *
 * `get` and `toJSON` are the base class's own: `get` is defined through `getTuple`, so a
 * wrapper that observes `getTuple` observes `get` too.
 */
export class ForwardingSaver<V extends string | number = number> extends BaseCheckpointSaver<V> {
  /** @param inner the saver every call goes to; its serializer is shared. */
  constructor(protected readonly inner: BaseCheckpointSaver<V>) {
    super(inner.serde);
  }

  override getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    return this.inner.getTuple(config);
  }

  override list(
    config: RunnableConfig,
    options?: CheckpointListOptions,
  ): AsyncGenerator<CheckpointTuple> {
    return this.inner.list(config, options);
  }

  override put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    return this.inner.put(config, checkpoint, metadata, newVersions);
  }

  override putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath?: string,
  ): Promise<void> {
    return this.inner.putWrites(config, writes, taskId, taskPath);
  }

  override deleteThread(threadId: string): Promise<void> {
    return this.inner.deleteThread(threadId);
  }

  override getDeltaChannelHistory(options: {
    config: RunnableConfig;
    channels: string[];
  }): Promise<Record<string, DeltaChannelHistory>> {
    return this.inner.getDeltaChannelHistory(options);
  }

  override getNextVersion(current: V | undefined): V {
    return this.inner.getNextVersion(current);
  }
}

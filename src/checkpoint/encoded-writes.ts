import type { RunnableConfig } from "@langchain/core/runnables";
import type { PendingWrite } from "@langchain/langgraph-checkpoint";

/**
 * `putWrites` with each value's JSON text already made by fast-encode.ts (decision H49). The
 * fallback's write-through cache needs the same texts the primary sends, so it encodes each value
 * once, at the call (before LangGraph's reducers may give a message its id in place), and hands
 * the texts to a primary that takes them. A symbol, not a method name: only Threadline's savers
 * pass texts, which are trusted to be `fastEncode(value)` of the very values.
 */
export const PUT_WRITES_ENCODED = Symbol("threadline.putWritesEncoded");

/** A saver whose `putWrites` can take the values' texts (see {@link PUT_WRITES_ENCODED}). */
export interface TakesEncodedWrites {
  /**
   * `putWrites(config, writes, taskId, taskPath)` where `texts[i]` is `fastEncode(writes[i][1])`,
   * taken at the call. A saver whose serializer is not LangGraph's own ignores the texts.
   */
  [PUT_WRITES_ENCODED](
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath: string | undefined,
    texts: readonly string[],
  ): Promise<void>;
}

/** Whether `saver` takes encoded writes. */
export function takesEncodedWrites(saver: object): saver is TakesEncodedWrites {
  return typeof (saver as Partial<TakesEncodedWrites>)[PUT_WRITES_ENCODED] === "function";
}

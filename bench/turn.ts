import { AIMessage } from "@langchain/core/messages";
import { MessagesAnnotation, StateGraph } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { messageText } from "./payload.js";

/** The benchmarks' chat graph: one node that answers with a reply naming the turn, no model. */
export function chatGraph(checkpointer: BaseCheckpointSaver) {
  return new StateGraph(MessagesAnnotation)
    .addNode("model", (state: typeof MessagesAnnotation.State) => {
      const turn = state.messages.filter((m) => m.getType() === "human").length;
      return { messages: [new AIMessage(messageText(turn, `turn ${turn} reply`))] };
    })
    .addEdge("__start__", "model")
    .addEdge("model", "__end__")
    .compile({ checkpointer });
}

/** Milliseconds one call takes. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

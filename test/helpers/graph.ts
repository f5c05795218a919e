import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { MessagesAnnotation, StateGraph } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { messageText } from "../../bench/payload.js";

/** A deterministic chat graph: the "model" names the turn, so memory is visible in replies. */
export function chatGraph(checkpointer: BaseCheckpointSaver) {
  return new StateGraph(MessagesAnnotation)
    .addNode("model", (state: typeof MessagesAnnotation.State) => {
      const turn = state.messages.filter((m) => m.getType() === "human").length;
      return {
        messages: [new AIMessage(`reply for turn ${turn}: ${messageText(turn, "ai", 280)}`)],
      };
    })
    .addEdge("__start__", "model")
    .addEdge("model", "__end__")
    .compile({ checkpointer });
}

/** Runs one turn and returns the thread's messages afterwards. */
export async function chatTurn(
  graph: ReturnType<typeof chatGraph>,
  threadId: string,
  text: string,
): Promise<BaseMessage[]> {
  const out = await graph.invoke(
    { messages: [new HumanMessage(text)] },
    { configurable: { thread_id: threadId } },
  );
  return out.messages;
}

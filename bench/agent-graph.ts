import { AIMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";

/**
 * The graph of the Agent Server benchmark (bench/agent-server.ts): one node that answers with a
 * fixed-size reply naming the turn, no model and no waiting, so what is measured is the serving
 * path (HTTP, run bookkeeping, checkpoints) around a graph, not the graph. Exported uncompiled:
 * the service compiles it on its saver stack, the in-process baseline on MemorySaver.
 */
export const graph = new StateGraph(MessagesAnnotation)
  .addNode("reply", (state: typeof MessagesAnnotation.State) => {
    const turn = state.messages.filter((m) => m.getType() === "human").length;
    return { messages: [new AIMessage(`reply for turn ${turn}: ${"lorem ipsum ".repeat(20)}`)] };
  })
  .addEdge(START, "reply")
  .addEdge("reply", END);

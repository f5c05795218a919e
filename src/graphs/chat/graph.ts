import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, SystemMessage } from "@langchain/core/messages";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import {
  END,
  MessagesAnnotation,
  START,
  StateGraph,
  type LangGraphRunnableConfig,
} from "@langchain/langgraph";
import { ThreadlineError } from "../../errors.js";

/** Name of the graph node that calls the model (its tokens are the reply). */
export const MODEL_NODE = "model";

/** Options of {@link buildChatGraph}. */
export interface ChatGraphOptions {
  checkpointer: BaseCheckpointSaver;
  model: BaseChatModel;
  /**
   * Sent as the first (system) message of every model call; not stored in the thread, so
   * changing it applies to existing conversations too. Default: none.
   */
  systemPrompt?: string;
}

/**
 * The chat agent: a one-node LangGraph `StateGraph` over `MessagesAnnotation`, compiled with the
 * given checkpointer, so every turn is a checkpoint and the conversation is the thread's state.
 *
 * The run's `configurable.assistantMessageId`, when set, becomes the id of the stored reply: the
 * id the client saw in the stream's `start` chunk is the one `GET /messages` returns later.
 */
export function buildChatGraph(options: ChatGraphOptions) {
  const { model, systemPrompt } = options;
  const callModel = async (
    state: typeof MessagesAnnotation.State,
    config: LangGraphRunnableConfig,
  ) => {
    let response;
    try {
      const messages =
        systemPrompt === undefined
          ? state.messages
          : [new SystemMessage(systemPrompt), ...state.messages];
      response = await model.invoke(messages, config);
    } catch (err) {
      // A cancelled run is not a model failure; anything else is, whatever the provider threw.
      if (config.signal?.aborted) throw err;
      throw new ThreadlineError(
        "MODEL_ERROR",
        `the model call failed: ${(err as Error)?.message ?? String(err)}`,
        {
          cause: err,
          details: providerDetails(err),
        },
      );
    }
    const wanted: unknown = config.configurable?.assistantMessageId;
    const id = typeof wanted === "string" ? wanted : response.id;
    return {
      messages: [
        new AIMessage({
          content: response.content,
          ...(id !== undefined ? { id } : {}),
          response_metadata: response.response_metadata,
        }),
      ],
    };
  };
  return new StateGraph(MessagesAnnotation)
    .addNode(MODEL_NODE, callModel)
    .addEdge(START, MODEL_NODE)
    .addEdge(MODEL_NODE, END)
    .compile({ checkpointer: options.checkpointer });
}

/** HTTP status and error code of an OpenAI-compatible provider failure, for logs. */
function providerDetails(err: unknown): Record<string, unknown> {
  if (err === null || typeof err !== "object") return {};
  const e = err as { status?: unknown; code?: unknown; name?: unknown };
  return {
    ...(typeof e.name === "string" ? { errorName: e.name } : {}),
    ...(typeof e.status === "number" ? { providerStatus: e.status } : {}),
    ...(typeof e.code === "string" ? { providerCode: e.code } : {}),
  };
}

/** The compiled chat graph. */
export type ChatGraph = ReturnType<typeof buildChatGraph>;

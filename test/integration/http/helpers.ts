import { Chat } from "@ai-sdk/react";
import { DefaultChatTransport, type UIMessage } from "ai";
import pino from "pino";
import {
  configSchema,
  type ThreadlineConfig,
  type ThreadlineConfigInput,
} from "../../../src/config/schema.js";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import { TEST_DATABASE_URL } from "../../helpers/db.js";

/** A config for in-process services on the test database, generous limits, no cleanup schedule. */
export function testConfig(schema: string, input: ThreadlineConfigInput = {}): ThreadlineConfig {
  return configSchema.parse({
    ...input,
    database: { url: TEST_DATABASE_URL, schema, ...input.database },
    server: {
      port: 0,
      host: "127.0.0.1",
      ...input.server,
      rateLimit: { max: 100_000, ...input.server?.rateLimit },
    },
    cleanup: { enabled: false, ...input.cleanup },
    log: { level: "silent", ...input.log },
  });
}

/** Starts the real service (PostgresCheckpointer behind the fallback) in this process. */
export function startTestService(config: ThreadlineConfig): Promise<RunningService> {
  return startService(config, {
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    cleanup: false,
  });
}

/** The text of a UIMessage. */
export function textOf(message: UIMessage | undefined): string {
  return (message?.parts ?? []).map((p) => (p.type === "text" ? p.text : "")).join("");
}

/** A real AI SDK `Chat` (the class `useChat` drives) talking to `baseUrl`. */
export function aiChat(
  baseUrl: string,
  id: string,
  options: {
    headers?: Record<string, string>;
    messages?: UIMessage[];
    lastMessageOnly?: boolean;
    /** Extra body fields (`useChat`'s transport `body`), e.g. `{ graph: "agent" }`. */
    body?: Record<string, unknown>;
  } = {},
): Chat<UIMessage> {
  return new Chat<UIMessage>({
    id,
    ...(options.messages ? { messages: options.messages } : {}),
    transport: new DefaultChatTransport({
      api: `${baseUrl}/api/chat`,
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.body ? { body: options.body } : {}),
      // The send-only-the-last-message form from the AI SDK docs.
      ...(options.lastMessageOnly
        ? {
            prepareSendMessagesRequest: ({ id: chatId, messages, body }) => ({
              body: { ...body, id: chatId, message: messages[messages.length - 1] },
            }),
          }
        : {}),
    }),
  });
}

/** Sends one user message and returns the assistant's reply text; fails on a chat error. */
export async function say(chat: Chat<UIMessage>, text: string): Promise<string> {
  await chat.sendMessage({ text });
  if (chat.status === "error") throw chat.error ?? new Error("chat failed");
  const last = chat.messages[chat.messages.length - 1];
  if (last?.role !== "assistant") throw new Error(`expected an assistant reply, got ${last?.role}`);
  return textOf(last);
}

/** Parsed SSE events of a UI message stream response (`[DONE]` kept as the string). */
export async function readSse(res: Response): Promise<Array<Record<string, unknown> | "[DONE]">> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => {
      const data = block.slice("data: ".length);
      return data === "[DONE]" ? "[DONE]" : (JSON.parse(data) as Record<string, unknown>);
    });
}

/** A POST /api/chat body in the `{ id, message }` form. */
export function chatBody(
  id: string,
  text: string,
  messageId = `m-${Math.random().toString(36).slice(2)}`,
) {
  return JSON.stringify({
    id,
    message: { id: messageId, role: "user", parts: [{ type: "text", text }] },
  });
}

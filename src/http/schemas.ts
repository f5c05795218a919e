import { z } from "zod";

/**
 * Chat (thread) ids: what the AI SDK generates (`generateId`, UUIDs) and what people type, but
 * nothing that could smuggle path segments, whitespace or control characters into logs and URLs.
 */
export const THREAD_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** A thread id as accepted in bodies and URL paths. */
export const threadIdSchema = z
  .string()
  .regex(THREAD_ID_RE, "a chat id must be 1-128 characters: letters, digits, '_', '-', '.', ':'");

/** Upper bound on message ids, which the server stores and echoes. */
const messageIdSchema = z.string().min(1).max(256);

const textPartSchema = z.looseObject({ type: z.literal("text"), text: z.string() });
const otherPartSchema = z.looseObject({
  type: z
    .string()
    .min(1)
    .max(128)
    .refine((t) => t !== "text", "text parts need a string text"),
});

/** A `UIMessage` as the AI SDK sends it; unknown part types are accepted and ignored. */
export const uiMessageSchema = z.looseObject({
  id: messageIdSchema,
  role: z.enum(["system", "user", "assistant"]),
  parts: z.array(z.union([textPartSchema, otherPartSchema])).max(1000),
  metadata: z.unknown().optional(),
});

/** The validated `UIMessage` shape. */
export type IncomingUIMessage = z.output<typeof uiMessageSchema>;

/**
 * `POST /api/chat` bodies: the AI SDK default (`messages` + `trigger`) or the
 * send-only-the-last-message form (`message`). Extra fields (`useChat({ body })`) are tolerated.
 */
const singleMessageBody = z.looseObject({
  id: threadIdSchema,
  message: uiMessageSchema,
  trigger: z.enum(["submit-message", "regenerate-message"]).optional(),
  messageId: messageIdSchema.optional(),
});
const allMessagesBody = z.looseObject({
  id: threadIdSchema,
  messages: z.array(uiMessageSchema).min(1, "messages must not be empty").max(10_000),
  trigger: z.enum(["submit-message", "regenerate-message"]).optional(),
  messageId: messageIdSchema.optional(),
});
export const chatRequestSchema = z.union([singleMessageBody, allMessagesBody]);

/** A validated chat request, reduced to what the server uses. */
export interface ChatRequest {
  threadId: string;
  /** The one new message; history comes from the checkpointer, never from the client. */
  message: IncomingUIMessage;
  trigger: "submit-message" | "regenerate-message";
}

/** Reduces either body form to the thread id and its one new message. */
export function toChatRequest(body: z.output<typeof chatRequestSchema>): ChatRequest {
  const many = body as Partial<z.output<typeof allMessagesBody>>;
  const message = Array.isArray(many.messages)
    ? many.messages[many.messages.length - 1]!
    : (body as z.output<typeof singleMessageBody>).message;
  return { threadId: body.id, message, trigger: body.trigger ?? "submit-message" };
}

/** The text a user message carries (text parts joined). */
export function uiMessageText(message: IncomingUIMessage): string {
  return message.parts
    .filter((p): p is z.output<typeof textPartSchema> => p.type === "text")
    .map((p) => p.text)
    .join("");
}

/** A compact, client-safe explanation of a zod failure (paths and messages, never values). */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "body"}: ${i.message}`)
    .join("; ");
}

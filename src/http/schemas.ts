import { z } from "zod";
import { GRAPH_NAME_RE } from "../graphs/spec.js";

/**
 * Chat (thread) ids: what the AI SDK generates (`generateId`, UUIDs) and what people type, but
 * nothing that could smuggle path segments, whitespace or control characters into logs and URLs.
 */
export const THREAD_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** A thread id as accepted in bodies and URL paths. */
export const threadIdSchema = z
  .string()
  .regex(THREAD_ID_RE, "a chat id must be 1-128 characters: letters, digits, '_', '-', '.', ':'");

/** A zod error callback: "required: <what>" for a missing value, "expected <what>" otherwise. */
const expect = (what: string) => ({
  error: (issue: { input?: unknown }) =>
    issue.input === undefined
      ? `required: ${what}`
      : `expected ${what}, got ${describeValue(issue.input)}`,
});

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return "a string";
  return typeof value === "object" ? "an object" : typeof value;
}

/** Upper bound on message ids, which the server stores and echoes. */
const messageIdSchema = z
  .string(expect("a string id for the message (the AI SDK generates one)"))
  .min(1, "a message id must not be empty")
  .max(256, "a message id must be at most 256 characters");

/** A part: `{ type: "text", text }` is read; other types are accepted and ignored. */
const partSchema = z
  .looseObject(
    {
      type: z
        .string(expect('a part type such as "text"'))
        .min(1, "a part type must not be empty")
        .max(128, "a part type must be at most 128 characters"),
      text: z.unknown().optional(),
    },
    expect('a part object such as { "type": "text", "text": "hi" }'),
  )
  .superRefine((part, ctx) => {
    if (part.type === "text" && typeof part.text !== "string")
      ctx.addIssue({
        code: "custom",
        path: ["text"],
        message: `${part.text === undefined ? "required" : "expected"}: a string (the text of a "text" part)`,
      });
  });

/** A `UIMessage` as the AI SDK sends it; unknown part types are accepted and ignored. */
export const uiMessageSchema = z.looseObject(
  {
    id: messageIdSchema,
    role: z.enum(
      ["system", "user", "assistant"],
      expect('a role: "user" (or "assistant", "system")'),
    ),
    parts: z
      .array(partSchema, expect('an array of parts such as [{ "type": "text", "text": "hi" }]'))
      .max(1000, "a message may have at most 1000 parts"),
    /** Kept with the message and returned by `GET /api/chat/:id/messages`. */
    metadata: z.unknown().optional(),
  },
  expect('a UIMessage object { "id", "role": "user", "parts": [{ "type": "text", "text" }] }'),
);

/** The validated `UIMessage` shape. */
export type IncomingUIMessage = z.output<typeof uiMessageSchema>;

const chatIdSchema = z
  .string(expect("the chat id, a string (the AI SDK sends the Chat's id)"))
  .regex(THREAD_ID_RE, "a chat id must be 1-128 characters: letters, digits, '_', '-', '.', ':'");
/** `graph`: which served graph answers (name or assistant id); default the `chat` graph. */
export const graphSelectorSchema = z
  .string(expect("a graph name or assistant id, a string"))
  .regex(GRAPH_NAME_RE, "a graph name is 1-64 characters: letters, digits, '_', '.', '-'")
  .optional();
const triggerSchema = z
  .enum(
    ["submit-message", "regenerate-message"],
    expect('"submit-message" or "regenerate-message"'),
  )
  .optional();

/**
 * `POST /api/chat` bodies: the AI SDK default (`messages` + `trigger`) or the
 * send-only-the-last-message form (`message`). Extra fields (`useChat({ body })`) are tolerated.
 */
const singleMessageBody = z.looseObject({
  id: chatIdSchema,
  message: uiMessageSchema,
  trigger: triggerSchema,
  messageId: messageIdSchema.optional(),
  graph: graphSelectorSchema,
});
const allMessagesBody = z.looseObject({
  id: chatIdSchema,
  messages: z
    .array(uiMessageSchema, expect("an array of UIMessages"))
    .min(1, "messages must not be empty")
    .max(10_000, "at most 10000 messages"),
  trigger: triggerSchema,
  messageId: messageIdSchema.optional(),
  graph: graphSelectorSchema,
});

/** Both body forms as one schema (for embedders); the service validates with {@link parseChatBody}. */
export const chatRequestSchema = z.union([singleMessageBody, allMessagesBody]);

/** The outcome of {@link parseChatBody}: the request, or every problem with its field path. */
export type ChatBodyResult = { ok: true; request: ChatRequest } | { ok: false; problems: string };

/**
 * Validates a `POST /api/chat` body and names each problem by its field path and what is
 * expected (`message.id: required: a string id ...`). The form is chosen by the key present
 * (`messages` or `message`), so errors speak about the form the client meant.
 */
export function parseChatBody(body: unknown): ChatBodyResult {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return {
      ok: false,
      problems: `body: expected a JSON object { "id", "message" } or { "id", "messages" }, got ${describeValue(body)}`,
    };
  }
  const form = "messages" in body ? allMessagesBody : "message" in body ? singleMessageBody : null;
  if (!form) {
    const id = chatIdSchema.safeParse((body as { id?: unknown }).id);
    const missing =
      'message: required: the new UIMessage (or "messages": the AI SDK default, all UIMessages of the chat)';
    return {
      ok: false,
      problems: id.success ? missing : `${describeZodError(id.error, "id")}; ${missing}`,
    };
  }
  const result = form.safeParse(body);
  if (!result.success) return { ok: false, problems: describeZodError(result.error) };
  return { ok: true, request: toChatRequest(result.data) };
}

/** A validated chat request, reduced to what the server uses. */
export interface ChatRequest {
  threadId: string;
  /** The one new message; history comes from the checkpointer, never from the client. */
  message: IncomingUIMessage;
  trigger: "submit-message" | "regenerate-message";
  /** The graph that answers (name or assistant id); undefined: the default (`chat`). */
  graph?: string;
}

/** Reduces either body form to the thread id and its one new message. */
export function toChatRequest(body: z.output<typeof chatRequestSchema>): ChatRequest {
  const many = body as Partial<z.output<typeof allMessagesBody>>;
  const message = Array.isArray(many.messages)
    ? many.messages[many.messages.length - 1]!
    : (body as z.output<typeof singleMessageBody>).message;
  return {
    threadId: body.id,
    message,
    trigger: body.trigger ?? "submit-message",
    ...(body.graph !== undefined ? { graph: body.graph } : {}),
  };
}

/** The text a user message carries (text parts joined). */
export function uiMessageText(message: IncomingUIMessage): string {
  return message.parts
    .map((p) => (p.type === "text" && typeof p.text === "string" ? p.text : ""))
    .join("");
}

/** A compact, client-safe explanation of a zod failure (paths and messages, never values). */
export function describeZodError(error: z.ZodError, root = "body"): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${fieldPath(i.path, root)}: ${i.message}`)
    .join("; ");
}

/** `["messages", 0, "parts"]` -> `messages[0].parts`. */
function fieldPath(path: readonly PropertyKey[], root: string): string {
  if (path.length === 0) return root;
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`))
    .join("");
}

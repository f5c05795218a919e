import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { OfflineChatModel, offlineReply, tokenize } from "../../../src/graphs/chat/offline.js";
import { createApiKeyAuth, hashApiKey } from "../../../src/http/auth.js";
import { toUIMessages } from "../../../src/http/chat.js";
import { httpStatusFor, toHttpError } from "../../../src/http/errors.js";
import { chatRequestSchema, threadIdSchema, toChatRequest } from "../../../src/http/schemas.js";
import { ThreadlineError, ERROR_CODES } from "../../../src/errors.js";

describe("offline model", () => {
  it("names the turn by counting user messages including the new one", () => {
    const history = [
      new HumanMessage("a"),
      new AIMessage("x"),
      new HumanMessage("b"),
      new AIMessage("y"),
      new HumanMessage("c"),
    ];
    expect(offlineReply(history)).toContain("turn 3");
    expect(offlineReply(history)).toContain('"c"');
    expect(offlineReply(history)).toBe(offlineReply(history));
  });

  it("streams several tokens that concatenate to the reply", async () => {
    const model = new OfflineChatModel();
    const chunks: string[] = [];
    for await (const chunk of await model.stream([new HumanMessage("hello there")]))
      chunks.push(chunk.content as string);
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.join("")).toBe(offlineReply([new HumanMessage("hello there")]));
    expect(tokenize("a  b c").join("")).toBe("a  b c");
  });
});

describe("API keys", () => {
  it("accepts configured bearer keys only and identifies them by hash", () => {
    const auth = createApiKeyAuth(["first-key-0123456789", "second-key-0123456789"]);
    expect(auth.authenticate("Bearer second-key-0123456789")?.keyHash).toBe(
      hashApiKey("second-key-0123456789"),
    );
    expect(auth.authenticate("bearer first-key-0123456789")?.keyId).toHaveLength(12);
    for (const header of [
      undefined,
      "",
      "Bearer",
      "Bearer first-key-012345678",
      "Basic first-key-0123456789",
      "first-key-0123456789",
    ]) {
      expect(auth.authenticate(header)).toBeUndefined();
    }
    expect(createApiKeyAuth([]).enabled).toBe(false);
  });
});

describe("request validation", () => {
  it("reduces both body forms to the last message", () => {
    const message = { id: "m2", role: "user", parts: [{ type: "text", text: "hi" }] };
    const a = toChatRequest(chatRequestSchema.parse({ id: "t", message }));
    const b = toChatRequest(
      chatRequestSchema.parse({
        id: "t",
        trigger: "submit-message",
        messages: [{ ...message, id: "m1" }, message],
      }),
    );
    expect(a.message.id).toBe("m2");
    expect(b.message.id).toBe("m2");
  });

  it("accepts AI SDK and UUID ids, rejects path-like ones", () => {
    for (const ok of [
      "abc",
      "Xy12AbCdEf345678",
      "0b7c8a7e-1f7e-4c1e-9a57-0d1f3f2b9c11",
      "org:team.thread_1",
    ]) {
      expect(threadIdSchema.safeParse(ok).success).toBe(true);
    }
    for (const bad of ["", "../x", "a/b", "a b", "-x", "x".repeat(129), "é"]) {
      expect(threadIdSchema.safeParse(bad).success).toBe(false);
    }
  });
});

describe("error mapping", () => {
  it("maps every code to a status and never leaks 500 details", () => {
    for (const code of ERROR_CODES) expect(httpStatusFor(code)).toBeGreaterThanOrEqual(400);
    const internal = toHttpError(
      new ThreadlineError("DB_ERROR", "relation secret_table at 10.1.2.3"),
    );
    expect(internal).toMatchObject({
      status: 500,
      body: { error: { code: "INTERNAL", message: "internal error" } },
    });
    expect(toHttpError(new Error("boom")).body.error.message).toBe("internal error");
    expect(
      toHttpError(new ThreadlineError("DB_UNAVAILABLE", "connect ECONNREFUSED 10.0.0.1")).body.error
        .message,
    ).not.toContain("10.0.0.1");
  });
});

describe("UI messages", () => {
  it("converts stored messages, skipping tool messages and filling missing ids", () => {
    const ui = toUIMessages([
      new HumanMessage({ content: "q", id: "u1" }),
      new ToolMessage({ content: "t", tool_call_id: "c" }),
      new AIMessage({ content: [{ type: "text", text: "a" }] }),
    ]);
    expect(ui).toEqual([
      { id: "u1", role: "user", parts: [{ type: "text", text: "q" }] },
      { id: "msg-2", role: "assistant", parts: [{ type: "text", text: "a" }] },
    ]);
  });
});

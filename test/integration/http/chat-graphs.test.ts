import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { UIMessage } from "ai";
import { uuidV5 } from "../../../src/graphs/load.js";
import type { GraphSpec } from "../../../src/graphs/spec.js";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { AGENT_FILE, FIXTURES } from "../agent-server/helpers.js";
import { aiChat, chatBody, readSse, say, testConfig, textOf } from "./helpers.js";
import pino from "pino";

// `/api/chat` with a user graph: the test agent (streaming model, tool node, an interrupt in
// one tool) served next to the built-in chat graph, driven by the AI SDK's own Chat class.
const graphs: GraphSpec[] = [
  { name: "agent", file: AGENT_FILE, exportName: "graph", source: "flag" },
  { name: "counter", file: `${FIXTURES}plain.mjs`, exportName: "graph", source: "flag" },
];

describe("/api/chat on the user's own graphs", () => {
  const schema = uniqueSchema("http_chat_graphs");
  let pool: pg.Pool;
  let service: RunningService;

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
    service = await startService(testConfig(schema), {
      logger: pino({ level: "silent" }),
      cleanup: false,
      graphs,
    });
  }, 120_000);
  afterAll(async () => {
    await service?.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
  });

  const messagesOf = async (id: string, graph?: string) => {
    const q = graph === undefined ? "" : `?graph=${graph}`;
    const res = await fetch(`${service.url}/api/chat/${id}/messages${q}`);
    return { status: res.status, body: (await res.json()) as { messages?: UIMessage[] } };
  };

  it("answers from the thread's memory with useChat's transport body { graph }", async () => {
    const chat = aiChat(service.url, `g-${randomUUID()}`, { body: { graph: "agent" } });
    expect(await say(chat, "My name is Frank")).toBe("Hello there, you said: My name is Frank");
    expect(await say(chat, "What is my name?")).toBe("Your name is Frank.");
    // The built-in graph would have answered with its offline model's "turn N" text.
    expect(chat.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });

  it("streams the model's tokens as they are produced, one text part per AI message", async () => {
    const id = `g-${randomUUID()}`;
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...JSON.parse(chatBody(id, "hi there")), graph: "agent" }),
    });
    expect(res.status).toBe(200);
    const events = await readSse(res);
    const types = events.map((e) => (e === "[DONE]" ? e : e.type));
    expect(types[0]).toBe("start");
    // "Hello there, you said: hi there" is six words: six tokens, each its own delta.
    expect(types.filter((t) => t === "text-delta")).toHaveLength(6);
    expect(types.filter((t) => t === "text-start")).toHaveLength(1);
    expect(types.slice(-3)).toEqual(["text-end", "finish", "[DONE]"]);
  });

  it("shows tool calls as dynamic-tool parts, live and after a reload", async () => {
    const id = `g-${randomUUID()}`;
    const chat = aiChat(service.url, id, { body: { graph: "agent" } });
    expect(await say(chat, "What is the weather in Paris?")).toBe("Done: It is sunny in Paris.");
    const reply = chat.messages.at(-1)!;
    const tool = reply.parts.find((p) => p.type === "dynamic-tool");
    expect(tool).toMatchObject({
      toolName: "get_weather",
      toolCallId: "call_weather",
      state: "output-available",
      input: { city: "Paris" },
      output: "It is sunny in Paris.",
    });

    const loaded = await messagesOf(id, "agent");
    expect(loaded.status).toBe(200);
    const messages = loaded.body.messages!;
    // user, then one assistant message holding the call, its output and the final text.
    expect(messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    expect(messages[1]!.parts.map((p) => p.type)).toEqual(["dynamic-tool", "text"]);
    expect(messages[1]!.parts[0]).toMatchObject({
      state: "output-available",
      output: tool && "output" in tool ? tool.output : undefined,
    });
    expect(textOf(messages[1])).toBe("Done: It is sunny in Paris.");
    // A reloaded Chat continues the same thread on the same graph.
    const again = aiChat(service.url, id, { messages, body: { graph: "agent" } });
    expect(await say(again, "My name is Ada")).toBe("Hello there, you said: My name is Ada");
  });

  it("ends the reply with a data-interrupt part when the graph interrupts", async () => {
    const chat = aiChat(service.url, `g-${randomUUID()}`, { body: { graph: "agent" } });
    await chat.sendMessage({ text: "Please send the report" });
    expect(chat.status).toBe("ready");
    const parts = chat.messages.at(-1)!.parts;
    const interrupt = parts.find((p) => p.type === "data-interrupt") as
      { data: Array<{ value: { question: string } }> } | undefined;
    expect(interrupt?.data[0]?.value.question).toBe("Send the email to frank@example.com?");
    expect(parts.find((p) => p.type === "dynamic-tool")).toMatchObject({
      toolName: "send_email",
      state: "input-available",
    });
  });

  it("takes the assistant id as well as the graph name, and defaults to the built-in chat", async () => {
    const byId = aiChat(service.url, `g-${randomUUID()}`, { body: { graph: uuidV5("agent") } });
    expect(await say(byId, "hello")).toBe("Hello there, you said: hello");
    const builtIn = aiChat(service.url, `g-${randomUUID()}`);
    expect(await say(builtIn, "hello")).toContain("turn 1");
    const named = aiChat(service.url, `g-${randomUUID()}`, { body: { graph: "chat" } });
    expect(await say(named, "hello")).toContain("turn 1");
  });

  it("refuses an unknown graph (404), a graph without messages and a bad name (400), storing nothing", async () => {
    const post = (id: string, graph: unknown) =>
      fetch(`${service.url}/api/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...JSON.parse(chatBody(id, "hello")), graph }),
      });
    const cases: Array<[unknown, number, string, RegExp]> = [
      ["nope", 404, "NOT_FOUND", /graph "nope" is not served \(served: chat, agent, counter\)/],
      ["counter", 400, "INVALID_INPUT", /graph "counter" has no "messages" in its state/],
      ["../agent", 400, "INVALID_INPUT", /graph: a graph name is 1-64 characters/],
      [42, 400, "INVALID_INPUT", /graph: expected a graph name or assistant id, a string/],
    ];
    for (const [graph, status, code, message] of cases) {
      const id = `g-${randomUUID()}`;
      const res = await post(id, graph);
      expect(res.status, String(graph)).toBe(status);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(code);
      expect(body.error.message).toMatch(message);
      expect((await messagesOf(id)).status).toBe(404);
    }
    expect((await messagesOf("any-id", "nope")).status).toBe(404);
    expect((await messagesOf("any-id", "..%2Fx")).status).toBe(400);
  });
});

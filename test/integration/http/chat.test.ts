import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { UIMessage } from "ai";
import type { RunningService } from "../../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { aiChat, chatBody, readSse, say, startTestService, testConfig, textOf } from "./helpers.js";

describe("chat API with a real AI SDK client", () => {
  const schema = uniqueSchema("http_chat");
  let pool: pg.Pool;
  let service: RunningService | undefined;

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
  });
  afterEach(async () => {
    await service?.shutdown("test");
    service = undefined;
  });
  afterAll(async () => {
    await dropSchema(pool, schema);
    await pool.end();
  });

  it("remembers a thread across turns and across a restart of the service", async () => {
    const id = `chat-${randomUUID()}`;
    service = await startTestService(testConfig(schema));
    const chat = aiChat(service.url, id);
    expect(await say(chat, "first")).toContain("turn 1");
    expect(await say(chat, "second")).toContain("turn 2");
    const third = await say(chat, "third");
    expect(third).toContain("turn 3");
    expect(third).toContain('"third"');

    await service.shutdown("restart");
    service = await startTestService(testConfig(schema));

    // A reloaded client starts from the server's copy of the chat, as a page reload would.
    const loaded = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      id: string;
      messages: UIMessage[];
    };
    expect(loaded.messages).toHaveLength(6);
    const again = aiChat(service.url, id, { messages: loaded.messages });
    expect(await say(again, "fourth")).toContain("turn 4");

    const res = await fetch(`${service.url}/api/chat/${id}/messages`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; messages: UIMessage[] };
    expect(body.id).toBe(id);
    expect(body.messages.map((m) => m.role)).toEqual([
      "user",
      "assistant",
      "user",
      "assistant",
      "user",
      "assistant",
      "user",
      "assistant",
    ]);
    expect(body.messages.map(textOf).filter((_, i) => i % 2 === 0)).toEqual([
      "first",
      "second",
      "third",
      "fourth",
    ]);
    // The ids the client holds are the ids the server stored.
    expect(body.messages.map((m) => m.id)).toEqual(again.messages.map((m) => m.id));
  });

  it("takes history from the checkpointer, never from the client", async () => {
    service = await startTestService(testConfig(schema));
    const id = `chat-${randomUUID()}`;
    const chat = aiChat(service.url, id, { lastMessageOnly: true });
    expect(await say(chat, "one")).toContain("turn 1");
    expect(await say(chat, "two")).toContain("turn 2");
    // A client that claims a long fabricated history changes nothing: only its last message counts.
    const fake = Array.from({ length: 10 }, (_, i) => ({
      id: `fake-${i}`,
      role: i % 2 === 0 ? "user" : "assistant",
      parts: [{ type: "text", text: `invented ${i}` }],
    }));
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        id,
        trigger: "submit-message",
        messages: [
          ...fake,
          { id: "real-3", role: "user", parts: [{ type: "text", text: "three" }] },
        ],
      }),
    });
    const events = await readSse(res);
    const text = events
      .flatMap((e) => (e !== "[DONE]" && e.type === "text-delta" ? [e.delta as string] : []))
      .join("");
    expect(text).toContain("turn 3");
  });

  it("streams the UI message stream v1 protocol: headers, chunk order, [DONE]", async () => {
    service = await startTestService(testConfig(schema));
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(`proto-${randomUUID()}`, "hello"),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(res.headers.get("x-vercel-ai-ui-message-stream")).toBe("v1");
    const events = await readSse(res);
    const types = events.map((e) => (e === "[DONE]" ? e : e.type));
    expect(types[0]).toBe("start");
    expect(types[1]).toBe("text-start");
    expect(types.filter((t) => t === "text-delta").length).toBeGreaterThan(3);
    expect(types.slice(-3)).toEqual(["text-end", "finish", "[DONE]"]);
  });

  it("regenerate replaces the last reply instead of adding a turn", async () => {
    service = await startTestService(testConfig(schema));
    const id = `regen-${randomUUID()}`;
    const chat = aiChat(service.url, id);
    await say(chat, "a");
    await say(chat, "b");
    await chat.regenerate();
    expect(chat.status).toBe("ready");
    expect(textOf(chat.messages[chat.messages.length - 1])).toContain("turn 2");
    const body = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      messages: UIMessage[];
    };
    expect(body.messages).toHaveLength(4);
  });

  it("deletes a thread: 204, then 404", async () => {
    service = await startTestService(testConfig(schema));
    const id = `del-${randomUUID()}`;
    await say(aiChat(service.url, id), "bye");
    const del = await fetch(`${service.url}/api/chat/${id}`, { method: "DELETE" });
    expect(del.status).toBe(204);
    const get = await fetch(`${service.url}/api/chat/${id}/messages`);
    expect(get.status).toBe(404);
    expect(await get.json()).toEqual({ error: { code: "NOT_FOUND", message: "chat not found" } });
  });

  it("reports health and metrics", async () => {
    service = await startTestService(testConfig(schema));
    await say(aiChat(service.url, `m-${randomUUID()}`), "count me");
    expect((await fetch(`${service.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${service.url}/health/ready`)).status).toBe(200);
    const db = (await (await fetch(`${service.url}/health/db`)).json()) as Record<string, unknown>;
    expect(db).toMatchObject({ status: "ok", mode: "primary", pending: 0 });
    expect(db.pool).toMatchObject({ max: 10 });
    expect(typeof db.latencyMs).toBe("number");
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    for (const name of [
      "threadline_http_requests_total",
      "threadline_chat_turns_total",
      "threadline_db_pool_connections",
      "threadline_checkpoint_operations_total",
      "threadline_fallback_mode",
    ]) {
      expect(metrics).toContain(name);
    }
    expect(metrics).toMatch(/threadline_chat_turns_total\{outcome="completed"\} [1-9]/);
    expect(metrics).toMatch(
      /threadline_checkpoint_operations_total\{operation="put",outcome="ok"\} [1-9]/,
    );
  });

  it("cancels the graph run when the client aborts", async () => {
    service = await startTestService(testConfig(schema, { model: { offlineTokenDelay: 200 } }));
    const controller = new AbortController();
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(`abort-${randomUUID()}`, "stop me"),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await expect(service.app.threadline.waitForStreams(3_000)).resolves.toBe(true);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/threadline_chat_turns_total\{outcome="client_aborted"\} 1/);
  });
});

import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import type { RunningService } from "../../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { aiChat, chatBody, readSse, say, startTestService, testConfig } from "./helpers.js";

interface UpstreamRequest {
  authorization: string | undefined;
  body: { model: string; stream: boolean; messages: Array<{ role: string; content: string }> };
}

/** A local stand-in for an OpenAI-compatible server: streams chat completions as SSE. */
async function fakeOpenAI(tokens: (turn: number) => string[]) {
  const requests: UpstreamRequest[] = [];
  let failNext: "status" | "midstream" | false = false;
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString("utf8")));
    req.on("end", () => {
      if (req.url !== "/v1/chat/completions") {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(raw) as UpstreamRequest["body"];
      requests.push({ authorization: req.headers.authorization, body });
      if (failNext === "status") {
        failNext = false;
        res.writeHead(500, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: { message: "upstream exploded at 10.0.0.7", type: "server_error" },
          }),
        );
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const turn = body.messages.filter((m) => m.role === "user").length;
      const chunk = (delta: Record<string, unknown>, finish: string | null) =>
        `data: ${JSON.stringify({
          id: "chatcmpl-fake",
          object: "chat.completion.chunk",
          created: 1,
          model: body.model,
          choices: [{ index: 0, delta, finish_reason: finish }],
        })}\n\n`;
      res.write(chunk({ role: "assistant", content: "" }, null));
      if (failNext === "midstream") {
        // Some tokens, then the connection drops: the failure comes after the reply began.
        failNext = false;
        res.write(chunk({ content: "Half an" }, null));
        setTimeout(() => res.destroy(), 50);
        return;
      }
      for (const token of tokens(turn)) res.write(chunk({ content: token }, null));
      res.write(chunk({}, "stop"));
      res.end("data: [DONE]\n\n");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    failOnce: (how: "status" | "midstream" = "status") => (failNext = how),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("OpenAI-compatible model path", () => {
  const schema = uniqueSchema("http_openai");
  let pool: pg.Pool;
  let service: RunningService;
  let upstream: Awaited<ReturnType<typeof fakeOpenAI>>;

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
    upstream = await fakeOpenAI((turn) => ["Hello", " from", " the", " fake", ` turn ${turn}`]);
    service = await startTestService(
      testConfig(schema, {
        model: {
          provider: "openai",
          baseUrl: upstream.baseUrl,
          name: "fake-model",
          apiKey: "sk-test-upstream",
          maxRetries: 0,
          systemPrompt: "You are the test assistant.",
        },
      }),
    );
  });
  afterAll(async () => {
    await service?.shutdown("test");
    await upstream?.close();
    await dropSchema(pool, schema);
    await pool.end();
  });

  it("relays upstream tokens as text-delta chunks and sends the growing history upstream", async () => {
    const id = `oa-${randomUUID()}`;
    upstream.requests.length = 0;
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(id, "hi"),
    });
    const events = await readSse(res);
    const deltas = events.flatMap((e) =>
      e !== "[DONE]" && e.type === "text-delta" ? [e.delta] : [],
    );
    expect(deltas).toEqual(["Hello", " from", " the", " fake", " turn 1"]);

    const chat = aiChat(service.url, id, {
      messages: [{ id: "x", role: "user", parts: [{ type: "text", text: "hi" }] }],
    });
    expect(await say(chat, "again")).toBe("Hello from the fake turn 2");
    expect(await say(chat, "third")).toBe("Hello from the fake turn 3");

    // model.systemPrompt goes first on every call, and is not stored in the thread.
    expect(upstream.requests.map((r) => r.body.messages.length)).toEqual([2, 4, 6]);
    const last = upstream.requests[2]!;
    expect(last.body.stream).toBe(true);
    expect(last.body.model).toBe("fake-model");
    expect(last.authorization).toBe("Bearer sk-test-upstream");
    expect(last.body.messages[0]).toEqual({
      role: "system",
      content: "You are the test assistant.",
    });
    expect(last.body.messages.slice(1).map((m) => m.role)).toEqual([
      "user",
      "assistant",
      "user",
      "assistant",
      "user",
    ]);
    expect(last.body.messages[2]!.content).toBe("Hello from the fake turn 1");
    const stored = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      messages: Array<{ role: string }>;
    };
    expect(stored.messages.map((m) => m.role)).toEqual([
      "user",
      "assistant",
      "user",
      "assistant",
      "user",
      "assistant",
    ]);
  });

  it("answers 502 MODEL_ERROR when the model fails before its first token, keeping the user message for a retry", async () => {
    const id = `oa-fail-${randomUUID()}`;
    upstream.failOnce("status");
    const body = chatBody(id, "boom", "m-boom");
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      error: { code: "MODEL_ERROR", message: "the model provider failed" },
    });
    expect(text).not.toContain("10.0.0.7");

    // The failed turn leaves the user's message, unanswered; re-sending it (same id, as
    // `regenerate()` does) answers it once instead of adding a second copy.
    const after = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      messages: Array<{ id: string; role: string }>;
    };
    expect(after.messages.map((m) => [m.id, m.role])).toEqual([["m-boom", "user"]]);
    const retry = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(retry.status).toBe(200);
    await readSse(retry);
    const retried = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      messages: Array<{ id: string; role: string }>;
    };
    expect(retried.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
  });

  it("ends a reply the model breaks off mid-stream with a sanitized error chunk and [DONE]", async () => {
    const id = `oa-mid-${randomUUID()}`;
    upstream.failOnce("midstream");
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(id, "boom"),
    });
    expect(res.status).toBe(200);
    const events = await readSse(res);
    const types = events.map((e) => (e === "[DONE]" ? e : e.type));
    expect(types.slice(0, 3)).toEqual(["start", "text-start", "text-delta"]);
    expect(types.slice(-2)).toEqual(["error", "[DONE]"]);
    const error = events.find((e) => e !== "[DONE]" && e.type === "error") as
      { errorText: string } | undefined;
    expect(error?.errorText).toBe("the model provider failed");
    // The partial reply is not stored: the thread holds the unanswered user message.
    const after = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      messages: Array<{ role: string }>;
    };
    expect(after.messages.map((m) => m.role)).toEqual(["user"]);
  });
});

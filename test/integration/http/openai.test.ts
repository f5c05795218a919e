import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import type { RunningService } from "../../../src/http/server.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { aiChat, chatBody, readSse, say, startTestService, testConfig } from "./helpers.js";

interface UpstreamRequest {
  authorization: string | undefined;
  body: { model: string; stream: boolean; messages: Array<{ role: string; content: string }> };
}

/** A local stand-in for an OpenAI-compatible server: streams chat completions as SSE. */
async function fakeOpenAI(tokens: (turn: number) => string[]) {
  const requests: UpstreamRequest[] = [];
  let failNext = false;
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
      if (failNext) {
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
    failOnce: () => (failNext = true),
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

    expect(upstream.requests.map((r) => r.body.messages.length)).toEqual([1, 3, 5]);
    const last = upstream.requests[2]!;
    expect(last.body.stream).toBe(true);
    expect(last.body.model).toBe("fake-model");
    expect(last.authorization).toBe("Bearer sk-test-upstream");
    expect(last.body.messages.map((m) => m.role)).toEqual([
      "user",
      "assistant",
      "user",
      "assistant",
      "user",
    ]);
    expect(last.body.messages[1]!.content).toBe("Hello from the fake turn 1");
  });

  it("turns an upstream failure into a sanitized error chunk", async () => {
    upstream.failOnce();
    const res = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(`oa-fail-${randomUUID()}`, "boom"),
    });
    expect(res.status).toBe(200);
    const events = await readSse(res);
    const error = events.find((e) => e !== "[DONE]" && e.type === "error") as
      { errorText: string } | undefined;
    expect(error?.errorText).toBe("the model provider failed");
    expect(JSON.stringify(events)).not.toContain("10.0.0.7");
    expect(events[events.length - 1]).toBe("[DONE]");
  });
});

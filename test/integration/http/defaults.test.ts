import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { MemorySaver } from "@langchain/langgraph-checkpoint";
import pino from "pino";
import type pg from "pg";
import { OfflineChatModel } from "../../../src/graphs/chat/offline.js";
import { configSchema, type ThreadlineConfigInput } from "../../../src/config/schema.js";
import { createApp } from "../../../src/http/app.js";
import {
  isLoopback,
  listenHost,
  startService,
  type RunningService,
} from "../../../src/service/composition-root.js";
import {
  dropSchema,
  requirePostgres,
  testPool,
  TEST_DATABASE_URL,
  uniqueSchema,
} from "../../helpers/db.js";
import { chatBody, readSse, startTestService, testConfig } from "./helpers.js";

const KEY = "defaults-key-0123456789";

/** A pino logger whose lines are kept, to read what the service logged. */
function captureLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line.trim()) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

describe("safe default host", () => {
  const schema = uniqueSchema("http_host");
  let pool: pg.Pool;
  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(1);
  });
  afterAll(async () => {
    await dropSchema(pool, schema);
    await pool.end();
  });

  it("chooses loopback without API keys, every interface with them, and a given host always", () => {
    const config = (input: ThreadlineConfigInput) => configSchema.parse(input);
    expect(listenHost(config({}))).toBe("127.0.0.1");
    expect(listenHost(config({ auth: { apiKeys: [KEY] } }))).toBe("0.0.0.0");
    expect(listenHost(config({ server: { host: "0.0.0.0" } }))).toBe("0.0.0.0");
    expect(listenHost(config({ server: { host: "::1" }, auth: { apiKeys: [KEY] } }))).toBe("::1");
    expect(["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"].every(isLoopback)).toBe(true);
    expect(["0.0.0.0", "::", "10.0.0.7", "192.168.1.2"].some(isLoopback)).toBe(false);
  });

  async function serve(input: ThreadlineConfigInput) {
    const { logger, lines } = captureLogger();
    const config = configSchema.parse({
      ...input,
      database: { url: TEST_DATABASE_URL, schema },
      server: { port: 0, ...input.server },
      cleanup: { enabled: false },
    });
    const service = await startService(config, { logger, cleanup: false });
    return { service, lines };
  }

  async function stop(service: RunningService) {
    await service.shutdown("test");
  }

  it("binds 127.0.0.1 by default and logs that address", async () => {
    const { service, lines } = await serve({});
    try {
      expect(service.server.address()).toMatchObject({ address: "127.0.0.1" });
      const listening = lines.find((l) => l.msg.startsWith("threadline listening on"));
      expect(listening?.msg).toMatch(/^threadline listening on http:\/\/127\.0\.0\.1:\d+ /);
      expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    } finally {
      await stop(service);
    }
  });

  it("binds every interface when API keys are configured, and says so", async () => {
    const { service, lines } = await serve({ auth: { apiKeys: [KEY] } });
    try {
      expect(service.server.address()).toMatchObject({ address: "0.0.0.0" });
      expect(lines.find((l) => l.msg.startsWith("threadline listening on"))?.msg).toMatch(
        /listening on http:\/\/0\.0\.0\.0:\d+ \(all interfaces; http:\/\/127\.0\.0\.1:\d+ from this machine\)/,
      );
      expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    } finally {
      await stop(service);
    }
  });

  it("warns loudly when told to listen beyond loopback without API keys", async () => {
    const { service, lines } = await serve({ server: { host: "0.0.0.0" } });
    try {
      const warning = lines.find((l) => l.level === 40);
      expect(warning?.msg).toMatch(
        /^WARNING: listening on 0\.0\.0\.0:\d+ beyond loopback WITHOUT API keys/,
      );
      expect(warning?.msg).toContain("THREADLINE_API_KEYS");
    } finally {
      await stop(service);
    }
  });
});

describe("chat service defaults a new user meets", () => {
  const schema = uniqueSchema("http_defaults");
  let pool: pg.Pool;
  let service: RunningService;
  const post = (
    body: string,
    headers: Record<string, string> = { "content-type": "application/json" },
  ) => fetch(`${service.url}/api/chat`, { method: "POST", headers, body });

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
    service = await startTestService(testConfig(schema));
  });
  afterAll(async () => {
    await service?.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
  });

  it("explains a bad chat body: field path and what is expected, as curl users send it", async () => {
    const cases: Array<[string, Record<string, string> | undefined, RegExp]> = [
      [chatBody("c1", "hi"), { "content-type": "text/plain" }, /content-type: application\/json/],
      [chatBody("c1", "hi"), {}, /content-type: application\/json/],
      [
        JSON.stringify({ id: "c1", message: "hello" }),
        undefined,
        /^invalid request: message: expected a UIMessage object/,
      ],
      [
        JSON.stringify({ message: { id: "m", role: "user", parts: [] } }),
        undefined,
        /^invalid request: id: required: the chat id/,
      ],
      [
        JSON.stringify({
          id: "c1",
          message: { role: "user", parts: [{ type: "text", text: "x" }] },
        }),
        undefined,
        /^invalid request: message\.id: required/,
      ],
      [
        JSON.stringify({ id: "c1", message: { id: "m", role: "user" } }),
        undefined,
        /^invalid request: message\.parts: required/,
      ],
      ["{not json", undefined, /^request body is not valid JSON$/],
    ];
    for (const [body, headers, message] of cases) {
      const res = await post(body, headers);
      expect(res.status).toBe(400);
      const json = (await res.json()) as { error: { code: string; message: string } };
      expect(json.error.code).toBe("INVALID_INPUT");
      expect(json.error.message).toMatch(message);
    }
  });

  it("keeps a message's metadata and returns it with GET /api/chat/:id/messages", async () => {
    const id = `meta-${randomUUID()}`;
    const metadata = { createdAt: "2026-12-01T19:00:00Z", tags: ["a", "b"], n: 3 };
    const res = await post(
      JSON.stringify({
        id,
        message: { id: "m-meta", role: "user", parts: [{ type: "text", text: "hi" }], metadata },
      }),
    );
    expect(res.status).toBe(200);
    await readSse(res);
    const stored = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      messages: Array<{ id: string; role: string; metadata?: unknown }>;
    };
    expect(stored.messages[0]).toMatchObject({ id: "m-meta", role: "user", metadata });
    expect(stored.messages[1]).not.toHaveProperty("metadata");
  });

  it("counts 200s, validation errors and bad JSON on /api/chat under one route label", async () => {
    await readSse(await post(chatBody(`lbl-${randomUUID()}`, "hi")));
    expect((await post(JSON.stringify({ id: "c1" }))).status).toBe(400);
    expect((await post("{not json")).status).toBe(400);
    expect((await fetch(`${service.url}/api/chat/bad%20id/messages`)).status).toBe(400);
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const routes = new Set(
      [...text.matchAll(/^threadline_http_requests_total\{([^}]*)\}/gm)].map(
        (m) => /route="([^"]*)"/.exec(m[1]!)![1],
      ),
    );
    // Not "/chat" for 400s nor "unmatched" for bad JSON: one label per route.
    expect([...routes].sort()).toEqual(["/api/chat", "/api/chat/:id/messages"]);
    expect(text).toMatch(
      /threadline_http_requests_total\{method="POST",route="\/api\/chat",status="400"\} \d+/,
    );
  });

  it("sends no HSTS or upgrade-insecure-requests over plain HTTP, and no CORS headers by default", async () => {
    const res = await fetch(`${service.url}/health/live`, {
      headers: { origin: "http://evil.example" },
    });
    expect(res.headers.get("strict-transport-security")).toBeNull();
    expect(res.headers.get("content-security-policy")).not.toContain("upgrade-insecure-requests");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cross-origin-resource-policy")).toBe("same-origin");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(`${service.url}/api/chat`, {
      method: "OPTIONS",
      headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("headers decided by server.trustProxy and server.cors", () => {
  const app = createApp({
    checkpointer: new MemorySaver(),
    model: new OfflineChatModel(),
    config: configSchema.parse({
      server: { trustProxy: true, cors: { origins: ["http://app.example:5173"] } },
    }),
  });
  let server: ReturnType<typeof app.listen>;
  let base = "";
  beforeAll(async () => {
    server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it("sends HSTS only on requests that arrived over HTTPS at the proxy", async () => {
    const plain = await fetch(`${base}/health/live`);
    expect(plain.headers.get("strict-transport-security")).toBeNull();
    const tls = await fetch(`${base}/health/live`, { headers: { "x-forwarded-proto": "https" } });
    expect(tls.headers.get("strict-transport-security")).toMatch(/max-age=\d+/);
    expect(tls.headers.get("content-security-policy")).toContain("upgrade-insecure-requests");
  });

  it("answers preflights of allowed origins on every route, before authentication", async () => {
    for (const path of ["/api/chat", "/threads/search", "/health/db"]) {
      const res = await fetch(`${base}${path}`, {
        method: "OPTIONS",
        headers: {
          origin: "http://app.example:5173",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("http://app.example:5173");
      expect(res.headers.get("access-control-allow-headers")).toBe("authorization, content-type");
      expect(res.headers.get("access-control-allow-methods")).toContain("DELETE");
      expect(res.headers.get("vary")).toContain("Origin");
    }
    const res = await fetch(`${base}/api/chat/none/messages`, {
      headers: { origin: "http://app.example:5173" },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://app.example:5173");
    expect(res.headers.get("access-control-expose-headers")).toContain("Content-Location");
    expect(res.headers.get("cross-origin-resource-policy")).toBe("cross-origin");
    const other = await fetch(`${base}/api/chat/none/messages`, {
      headers: { origin: "http://other.example" },
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});

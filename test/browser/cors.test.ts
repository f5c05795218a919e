import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import { chromium, type BrowserContext } from "playwright-core";
import type { RunningService } from "../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../helpers/db.js";
import { chatBody, startTestService, testConfig } from "../integration/http/helpers.js";

const KEY = "cors-key-0123456789abcdef";

/** A page server on its own port: its origin is not the service's. */
async function pageServer(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>other origin</title><p>app</p>");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface Outcome {
  ok: boolean;
  status?: number;
  body?: string;
  stream?: string | null;
  requestId?: string | null;
  error?: string;
}

describe("CORS from a real browser (headless Chromium)", () => {
  const schema = uniqueSchema("http_cors");
  const userDataDir = mkdtempSync(join(tmpdir(), "tl-chromium-"));
  let pool: pg.Pool;
  let service: RunningService;
  let allowed: Awaited<ReturnType<typeof pageServer>>;
  let denied: Awaited<ReturnType<typeof pageServer>>;
  let browser: BrowserContext;

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
    allowed = await pageServer();
    denied = await pageServer();
    service = await startTestService(
      testConfig(schema, {
        auth: { apiKeys: [KEY] },
        server: { cors: { origins: [allowed.origin] } },
      }),
    );
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
      ],
      timeout: 90_000,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await service?.shutdown("test");
    await new Promise((r) => allowed?.server.close(r));
    await new Promise((r) => denied?.server.close(r));
    await dropSchema(pool, schema);
    await pool.end();
    rmSync(userDataDir, { recursive: true, force: true });
  });

  /** Runs `fetch(url, init)` inside a page loaded from `origin`. */
  async function fetchFrom(
    origin: string,
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
  ): Promise<Outcome> {
    const page = await browser.newPage();
    try {
      await page.goto(origin);
      return await page.evaluate(
        async ({ url, init }) => {
          try {
            const res = await fetch(url, init);
            return {
              ok: true,
              status: res.status,
              body: await res.text(),
              stream: res.headers.get("x-vercel-ai-ui-message-stream"),
              requestId: res.headers.get("x-request-id"),
            };
          } catch (err) {
            return { ok: false, error: String(err) };
          }
        },
        { url, init },
      );
    } finally {
      await page.close();
    }
  }

  it("lets a page on an allowed origin stream /api/chat with an API key (preflight answered)", async () => {
    const id = `cors-${randomUUID()}`;
    const outcome = await fetchFrom(allowed.origin, `${service.url}/api/chat`, {
      method: "POST",
      // Authorization and a JSON content type make the browser send a preflight first.
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: chatBody(id, "hello from another origin"),
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(200);
    const reply = (outcome.body ?? "")
      .split("\n\n")
      .filter((b) => b.startsWith("data: {"))
      .map((b) => JSON.parse(b.slice(6)) as { type: string; delta?: string })
      .map((c) => (c.type === "text-delta" ? c.delta : ""))
      .join("");
    expect(reply).toContain("turn 1");
    expect(outcome.body).toContain("data: [DONE]");
    // Exposed response headers are readable by the script.
    expect(outcome.stream).toBe("v1");
    expect(outcome.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("covers every route, error answers included (a page can read a 401 and a 404)", async () => {
    const unauthorized = await fetchFrom(allowed.origin, `${service.url}/api/chat/x/messages`, {
      method: "GET",
      headers: {},
    });
    expect(unauthorized).toMatchObject({ ok: true, status: 401 });
    expect(unauthorized.body).toContain("UNAUTHORIZED");
    // A root route outside /api (where the Agent Server API lives) gets the same headers.
    const root = await fetchFrom(allowed.origin, `${service.url}/threads/search`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: "{}",
    });
    expect(root.ok).toBe(true);
    expect(root.status).toBeGreaterThanOrEqual(200);
  });

  it("blocks a page on an origin that is not listed", async () => {
    const outcome = await fetchFrom(denied.origin, `${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: chatBody(`cors-denied-${randomUUID()}`, "let me in"),
    });
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain("TypeError");
  });
});

import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import type pg from "pg";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import type { ServiceStatus, ThreadStorage } from "../../../src/http/status.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { chatBody, readSse, testConfig } from "./helpers.js";

const KEY_A = "key-a-0123456789abcdef";
const KEY_B = "key-b-0123456789abcdef";
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("GET /api/status and the page's static files", () => {
  const schema = uniqueSchema("http_status");
  let pool: pg.Pool;
  let service: RunningService;
  let webRoot: string;

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
    webRoot = await mkdtemp(join(tmpdir(), "threadline-web-"));
    await mkdir(join(webRoot, "assets"));
    await writeFile(join(webRoot, "index.html"), "<!doctype html><title>page</title>");
    await writeFile(join(webRoot, "assets", "app-abc123.js"), "console.log(1)");
    // The real schedule, every second, so a sweep has run by the time the test reads it.
    const config = testConfig(schema, {
      auth: { apiKeys: [KEY_A, KEY_B] },
      cleanup: { enabled: true, schedule: "* * * * * *", ttl: "3d" },
    });
    service = await startService(config, { logger: pino({ level: "silent" }), webRoot });
  });
  afterAll(async () => {
    await service?.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
    await rm(webRoot, { recursive: true, force: true });
  });

  it("serves index.html at / (revalidated) and hashed assets (cached), outside the API key", async () => {
    const page = await fetch(`${service.url}/?thread=abc`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(page.headers.get("cache-control")).toBe("no-cache");
    expect(await page.text()).toContain("<title>page</title>");
    const asset = await fetch(`${service.url}/assets/app-abc123.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toMatch(/max-age=31536000.*immutable/);
    const missing = await fetch(`${service.url}/assets/nope.js`);
    expect(missing.status).toBe(404);
  });

  it("tells the page whether a key is needed, without a key", async () => {
    const res = await fetch(`${service.url}/api/auth`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ apiKeyRequired: true });
  });

  it("reports database mode, pool, fallback backlog and the last cleanup run", async () => {
    expect((await fetch(`${service.url}/api/status`)).status).toBe(401);
    const read = async () =>
      (await (
        await fetch(`${service.url}/api/status`, { headers: auth(KEY_A) })
      ).json()) as ServiceStatus;
    const status = await until(read, (s) => s.cleanup.lastRun !== null);
    expect(status.database).toMatchObject({
      kind: "postgres",
      status: "ok",
      mode: "primary",
      pending: 0,
      pendingBytes: 0,
    });
    expect(status.database.pool.max).toBe(10);
    expect(status.database.pool.total).toBeGreaterThanOrEqual(1);
    expect(status.cleanup).toMatchObject({
      enabled: true,
      schedule: "* * * * * *",
      ttlMs: 3 * 86_400_000,
    });
    expect(status.cleanup.lastRun).toMatchObject({
      status: "success",
      threadsDeleted: 0,
      checkpointsDeleted: 0,
      complete: true,
    });
    expect(Date.parse(status.cleanup.lastRun!.at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("reports a thread's storage and expiry, and 404 for another key's thread", async () => {
    const id = `status-${Date.now()}`;
    const chat = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth(KEY_A) },
      body: chatBody(id, "hello"),
    });
    expect(chat.status).toBe(200);
    expect((await readSse(chat)).at(-1)).toBe("[DONE]");

    const res = await fetch(`${service.url}/api/status/threads/${id}`, { headers: auth(KEY_A) });
    expect(res.status).toBe(200);
    const storage = (await res.json()) as ThreadStorage;
    expect(storage.threadId).toBe(id);
    expect(storage.checkpoints).toBeGreaterThanOrEqual(2);
    expect(storage.bytes).toBeGreaterThan(0);
    const { rows } = await pool.query<{ last_activity: Date }>(
      `SELECT last_activity FROM "${schema}".checkpoint_threads WHERE thread_id = $1`,
      [id],
    );
    expect(storage.lastActivity).toBe(rows[0]!.last_activity.toISOString());
    expect(Date.parse(storage.expiresAt!) - Date.parse(storage.lastActivity!)).toBe(3 * 86_400_000);

    const other = await fetch(`${service.url}/api/status/threads/${id}`, { headers: auth(KEY_B) });
    expect(other.status).toBe(404);
    const unknown = await fetch(`${service.url}/api/status/threads/never-written`, {
      headers: auth(KEY_A),
    });
    expect(unknown.status).toBe(200);
    expect(await unknown.json()).toMatchObject({ checkpoints: 0, bytes: 0, lastActivity: null });
    const bad = await fetch(`${service.url}/api/status/threads/%20x`, { headers: auth(KEY_A) });
    expect(bad.status).toBe(400);
  });
});

describe("GET / without a built page", () => {
  const schema = uniqueSchema("http_noweb");
  let pool: pg.Pool;
  let service: RunningService;
  let empty: string;
  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(1);
    empty = await mkdtemp(join(tmpdir(), "threadline-noweb-"));
    service = await startService(testConfig(schema), {
      logger: pino({ level: "silent" }),
      cleanup: false,
      webRoot: empty,
    });
  });
  afterAll(async () => {
    await service?.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
    await rm(empty, { recursive: true, force: true });
  });

  it("answers 503 with the command that builds it", async () => {
    const res = await fetch(`${service.url}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("npm run build");
  });
});

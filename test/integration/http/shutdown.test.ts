import { randomUUID } from "node:crypto";
import type pg from "pg";
import {
  dropSchema,
  requirePostgres,
  TEST_DATABASE_URL,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";
import { spawnServe, type ServeProcess } from "./cli-helpers.js";
import { chatBody } from "./helpers.js";

describe("graceful shutdown of threadline serve", () => {
  const schema = uniqueSchema("http_term");
  let pool: pg.Pool;
  let serve: ServeProcess | undefined;

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(1);
  });
  afterAll(async () => {
    if (serve && serve.child.exitCode === null) serve.child.kill("SIGKILL");
    await dropSchema(pool, schema);
    await pool.end();
  });

  it("on SIGTERM turns readiness 503, lets the running stream finish cleanly, and exits 0", async () => {
    serve = await spawnServe({
      DATABASE_URL: TEST_DATABASE_URL,
      THREADLINE_DATABASE_SCHEMA: schema,
      // ~17 tokens x 150 ms: the reply is still streaming when the signal arrives.
      THREADLINE_MODEL_OFFLINE_TOKEN_DELAY: "150",
      THREADLINE_SERVER_SHUTDOWN_TIMEOUT: "20s",
      THREADLINE_CLEANUP_ENABLED: "false",
    });
    expect((await fetch(`${serve.url}/health/ready`)).status).toBe(200);

    const res = await fetch(`${serve.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(`term-${randomUUID()}`, "keep going"),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    expect(text).toContain('"type":"start"');

    serve.child.kill("SIGTERM");
    let ready = 200;
    for (let i = 0; i < 40 && ready === 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ready = (await fetch(`${serve.url}/health/ready`)).status;
    }
    expect(ready).toBe(503);
    const refused = await fetch(`${serve.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(`late-${randomUUID()}`, "too late"),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "SHUTTING_DOWN",
    );

    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const reply = [...text.matchAll(/"delta":"((?:[^"\\]|\\.)*)"/g)]
      .map((m) => JSON.parse(`"${m[1]}"`) as string)
      .join("");
    expect(reply).toContain("turn 1");
    expect(text).toContain('"type":"finish"');
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(text).not.toContain('"type":"error"');

    expect(await serve.exited).toBe(0);
    expect(serve.logs()).toContain("threadline stopped");
  });

  it("cancels streams that outlive the shutdown deadline and still exits 0", async () => {
    serve = await spawnServe({
      DATABASE_URL: TEST_DATABASE_URL,
      THREADLINE_DATABASE_SCHEMA: schema,
      THREADLINE_MODEL_OFFLINE_TOKEN_DELAY: "1000",
      THREADLINE_SERVER_SHUTDOWN_TIMEOUT: "500ms",
      THREADLINE_CLEANUP_ENABLED: "false",
    });
    const res = await fetch(`${serve.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(`slow-${randomUUID()}`, "slow"),
    });
    const reader = res.body!.getReader();
    await reader.read();
    serve.child.kill("SIGTERM");
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    expect(text).toContain('"errorText":"the service is shutting down; retry"');
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(await serve.exited).toBe(0);
  });
});

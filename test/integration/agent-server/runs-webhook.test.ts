import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@langchain/langgraph-sdk";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { testConfig } from "../http/helpers.js";
import { AGENT_FILE, until } from "./helpers.js";

/**
 * A run's `webhook` (POSTed the ended run with its values) and `after_seconds` (queued until
 * then), through the SDK Client as users send them, and the 422 of bad values of both (nothing
 * stored).
 */

const schema = uniqueSchema("tl_runhook");
const pool = testPool(2);
let service: RunningService;
let client: Client;
let receiver: Server;
let hookUrl: string;
const received: Array<{ path: string; body: Record<string, unknown> }> = [];

beforeAll(async () => {
  await requirePostgres();
  service = await startService(testConfig(schema, { runs: { pollInterval: 200 } }), {
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    cleanup: false,
    webRoot: false,
    graphs: [{ name: "agent", file: AGENT_FILE, exportName: "graph", source: "flag" }],
  });
  client = new Client({ apiUrl: service.url, apiKey: null });
  receiver = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString("utf8")));
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: JSON.parse(text) as Record<string, unknown> });
      res.writeHead(req.url?.startsWith("/fail") ? 500 : 204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await service?.shutdown("test");
  await new Promise((r) => receiver?.close(r));
  await dropSchema(pool, schema);
  await pool.end();
});

const say = (content: string) => ({ messages: [{ role: "user", content }] });

describe("run webhooks", () => {
  it("runs.wait with a webhook: the ended run and its values are POSTed to it", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "agent", {
      input: say("hello hook"),
      webhook: `${hookUrl}/done?token=abc`,
    });
    const hit = await until(
      "the webhook call",
      () => Promise.resolve(received.find((r) => r.body.thread_id === thread.thread_id)),
      (r) => r !== undefined,
    );
    expect(hit!.path).toBe("/done?token=abc");
    expect(hit!.body.status).toBe("success");
    expect(typeof hit!.body.run_id).toBe("string");
    const values = hit!.body.values as { messages: Array<{ content: string }> };
    expect(values.messages.at(-1)?.content).toBe("Hello there, you said: hello hook");
  });

  it("a background run's webhook fires when a worker ends it; a failing receiver changes nothing", async () => {
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "agent", {
      input: say("in the background"),
      webhook: `${hookUrl}/fail`,
    });
    await until(
      "the webhook call",
      () => Promise.resolve(received.find((r) => r.body.run_id === run.run_id)),
      (r) => r !== undefined,
    );
    expect((await client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
  });
});

describe("after_seconds", () => {
  it("a run is not started before its time, then runs", async () => {
    const thread = await client.threads.create();
    const sent = Date.now();
    const run = await client.runs.create(thread.thread_id, "agent", {
      input: say("later"),
      afterSeconds: 1.5,
    });
    expect(run.status).toBe("pending");
    await new Promise((r) => setTimeout(r, 700));
    expect((await client.runs.get(thread.thread_id, run.run_id)).status).toBe("pending");
    await client.runs.join(thread.thread_id, run.run_id);
    const { rows } = await pool.query<{ started_at: Date; status: string }>(
      `SELECT started_at, status FROM "${schema}".agent_runs WHERE run_id = $1`,
      [run.run_id],
    );
    expect(rows[0]!.status).toBe("success");
    expect(rows[0]!.started_at.getTime() - sent).toBeGreaterThanOrEqual(1_400);
  });

  it("runs.wait with after_seconds waits for the delayed run", async () => {
    const thread = await client.threads.create();
    const sent = Date.now();
    const out = (await client.runs.wait(thread.thread_id, "agent", {
      input: say("soon"),
      afterSeconds: 0.5,
    })) as { messages: Array<{ content: string }> };
    expect(out.messages.at(-1)?.content).toBe("Hello there, you said: soon");
    expect(Date.now() - sent).toBeGreaterThanOrEqual(450);
  });
});

describe("bad values are 422 and store nothing", () => {
  for (const [name, extra] of [
    ["a negative after_seconds", { after_seconds: -1 }],
    ["after_seconds over a day", { after_seconds: 90_000 }],
    ["a webhook that is not a URL", { webhook: "not a url" }],
    ["a webhook that is not http(s)", { webhook: "file:///etc/passwd" }],
  ] as const) {
    it(name, async () => {
      const thread = await client.threads.create();
      const res = await fetch(`${service.url}/threads/${thread.thread_id}/runs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ assistant_id: "agent", input: say("x"), ...extra }),
      });
      expect(res.status).toBe(422);
      const body = (await res.json()) as { message?: string; detail?: string };
      expect(JSON.stringify(body)).toMatch(/after_seconds|webhook/);
      expect(await client.runs.list(thread.thread_id)).toEqual([]);
    });
  }
});

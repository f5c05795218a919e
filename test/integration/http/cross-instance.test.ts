import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";
import { spawnServe, type ServeProcess } from "./cli-helpers.js";
import { chatBody, readSse } from "./helpers.js";

/**
 * Issue 11, item 1, between two `threadline serve` processes on one database: instance B deletes
 * a thread while instance A is in the middle of a turn on it. The model is a local
 * OpenAI-compatible server that holds A's completion request until B's DELETE has answered, so
 * the delete lands inside the turn every time (ordered by the test, not by timing).
 */

interface Held {
  release(): void;
}

/** A stand-in for an OpenAI-compatible server whose next request can be held. */
async function gatedOpenAI() {
  let armed: ((held: Held) => void) | undefined;
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString("utf8")));
    req.on("end", () => {
      const body = JSON.parse(raw) as { model: string; messages: Array<{ role: string }> };
      const turn = body.messages.filter((m) => m.role === "user").length;
      const reply = () => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta: Record<string, unknown>, finish: string | null) =>
          `data: ${JSON.stringify({
            id: "chatcmpl-gated",
            object: "chat.completion.chunk",
            created: 1,
            model: body.model,
            choices: [{ index: 0, delta, finish_reason: finish }],
          })}\n\n`;
        res.write(chunk({ role: "assistant", content: "" }, null));
        for (const token of ["Reply", " to", ` turn ${turn}`])
          res.write(chunk({ content: token }, null));
        res.write(chunk({}, "stop"));
        res.end("data: [DONE]\n\n");
      };
      const hold = armed;
      armed = undefined;
      if (hold) hold({ release: reply });
      else reply();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    /** Holds the next completion request; resolves once it has arrived. */
    holdNext: () => new Promise<Held>((resolve) => (armed = resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One chat turn through POST /api/chat: the HTTP status and whether the stream had an error. */
async function turn(url: string, id: string, text: string) {
  const res = await fetch(`${url}/api/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: chatBody(id, text),
  });
  const events = res.status === 200 ? await readSse(res) : [];
  const failed = events.some((e) => e !== "[DONE]" && e.type === "error");
  return { status: res.status, failed };
}

/** GET /api/chat/:id/messages: status and body text (compared across instances). */
async function messages(url: string, id: string) {
  const res = await fetch(`${url}/api/chat/${id}/messages`);
  return { status: res.status, body: await res.text() };
}

describe("a thread deleted by one instance while another streams a turn on it", () => {
  const schema = uniqueSchema("http_xinst");
  let pool: pg.Pool;
  let upstream: Awaited<ReturnType<typeof gatedOpenAI>>;
  const served: ServeProcess[] = [];

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(1);
    upstream = await gatedOpenAI();
    const env = {
      DATABASE_URL: TEST_DATABASE_URL,
      THREADLINE_DATABASE_SCHEMA: schema,
      THREADLINE_CLEANUP_ENABLED: "false",
      THREADLINE_SERVER_RATE_LIMIT_MAX: "100000",
      THREADLINE_MODEL_PROVIDER: "openai",
      THREADLINE_MODEL_BASE_URL: upstream.baseUrl,
      THREADLINE_MODEL_API_KEY: "sk-test-upstream",
      THREADLINE_MODEL_MAX_RETRIES: "0",
    };
    // One after the other: the first installs the schema.
    served.push(await spawnServe(env));
    served.push(await spawnServe(env));
  }, 180_000);

  afterAll(async () => {
    for (const s of served) {
      if (s.child.exitCode === null) s.child.kill("SIGTERM");
      await s.exited;
    }
    await upstream?.close();
    await dropSchema(pool, schema);
    await pool.end();
  });

  it("every instance then reads the thread the same way, never DATA_CORRUPT or 500, and it continues (10 of 10)", async () => {
    const [a, b] = served.map((s) => s.url) as [string, string];
    const outcomes = { fresh: 0, deleted: 0 };
    for (let round = 0; round < 10; round++) {
      const id = `xinst-${round}-${randomUUID()}`;
      // Two turns on A: it holds the thread's messages as the base of its next delta.
      expect(await turn(a, id, "one")).toEqual({ status: 200, failed: false });
      expect(await turn(a, id, "two")).toEqual({ status: 200, failed: false });

      const held = upstream.holdNext();
      const third = turn(a, id, "three");
      // A has read the thread and written the turn's input checkpoints; its model call waits.
      const call = await held;
      expect((await fetch(`${b}/api/chat/${id}`, { method: "DELETE" })).status).toBe(204);
      call.release();
      expect(await third).toEqual({ status: 200, failed: false });

      const [onA, onB] = [await messages(a, id), await messages(b, id)];
      expect([200, 404]).toContain(onA.status);
      expect(onB).toEqual(onA);
      if (onA.status === 200) outcomes.fresh++;
      else outcomes.deleted++;

      // The thread continues from either instance, and both see the same conversation.
      expect(await turn(b, id, "four")).toEqual({ status: 200, failed: false });
      expect(await turn(a, id, "five")).toEqual({ status: 200, failed: false });
      const [lastA, lastB] = [await messages(a, id), await messages(b, id)];
      expect(lastA.status).toBe(200);
      expect(lastB).toEqual(lastA);
    }
    // The turn's later checkpoints land in a fresh thread (stored whole), every time.
    expect(outcomes).toEqual({ fresh: 10, deleted: 0 });
    for (const s of served) expect(s.logs()).not.toContain("DATA_CORRUPT");
  }, 180_000); // ~15 s on a quiet machine; two services and 50 turns under a load of 20+
});

import { randomUUID } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import pino from "pino";
import type { UIMessage } from "ai";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import { migrate } from "../../../src/db/migrator.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { backdate, countRows, seedThreads } from "../cleanup/fixtures.js";
import { aiChat, say, testConfig, textOf } from "../http/helpers.js";

// Three service instances on one schema behind a round-robin proxy of the test's own. The proxy
// sends each turn of a chat to a different instance than the one before (it reads the chat id
// from the body), so every turn starts on an instance whose delta cache saw the previous turn
// only from the database. Each instance runs its cleanup schedule every second.
const INSTANCES = 3;
const CHATS = 50;
const TURNS = 3;

const admin = testPool(2);
const schema = uniqueSchema("tl_round_robin");
const services: RunningService[] = [];
const logs: Array<Array<{ msg: string; tick?: string; level: number }>> = [];
/** Which instance served each chat turn, in order. */
const servedBy = new Map<string, number[]>();
let proxy: http.Server;
let proxyUrl = "";

/** Picks the instance for a request: chat turns rotate per chat, everything else globally. */
function route(chatId: string | undefined, counter: { n: number }): number {
  if (chatId === undefined) return counter.n++ % INSTANCES;
  const seen = servedBy.get(chatId) ?? [];
  // Start each chat on a different instance, then move one instance on every turn.
  const start = (servedBy.size + seen.length) % INSTANCES;
  const next = seen.length === 0 ? start : (seen[seen.length - 1]! + 1) % INSTANCES;
  seen.push(next);
  servedBy.set(chatId, seen);
  return next;
}

async function startProxy(): Promise<void> {
  const counter = { n: 0 };
  proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      let chatId: string | undefined;
      if (req.method === "POST" && req.url === "/api/chat") {
        chatId = (JSON.parse(body.toString("utf8")) as { id: string }).id;
      }
      const target = new URL(services[route(chatId, counter)]!.url);
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, "content-length": String(body.length) },
          // A fresh connection per request: a kept-alive one the instance closes while idle
          // would reset the next request that reuses it, which is not what this test is about.
          agent: false,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on("error", (err) => {
        res.writeHead(502, { "content-type": "text/plain" }).end(`proxy: ${err.message}`);
      });
      upstream.end(body);
    });
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
}

beforeAll(async () => {
  await requirePostgres();
  await migrate(admin, { schema });
  await seedThreads(admin, schema, { prefix: "old-", threads: 60, checkpoints: 2 });
  await backdate(admin, schema, "old-", "8 days");
  for (let i = 0; i < INSTANCES; i++) {
    const lines: (typeof logs)[number] = [];
    logs.push(lines);
    const logger = pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
    );
    const config = testConfig(schema, {
      // Pools of 6: three instances stay within the suite's connection budget.
      database: { pool: { size: 6 } },
      cleanup: { enabled: true, schedule: "* * * * * *", ttl: "7d", batchSize: 10 },
    });
    services.push(await startService(config, { logger }));
  }
  await startProxy();
}, 120_000);

afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
  for (const s of services) await s.shutdown("test");
  await dropSchema(admin, schema);
  await admin.end();
});

describe("three service instances behind a round-robin proxy", () => {
  it(`${CHATS} concurrent chats whose consecutive turns land on different instances keep exact histories`, async () => {
    const ids = Array.from({ length: CHATS }, () => `rr-${randomUUID()}`);
    const errors: unknown[] = [];
    await Promise.all(
      ids.map(async (id) => {
        let messages: UIMessage[] = [];
        for (let turn = 1; turn <= TURNS; turn++) {
          try {
            const chat = aiChat(proxyUrl, id, { messages, lastMessageOnly: true });
            const reply = await say(chat, `${id} message ${turn}`);
            // The offline model names the turn from the thread's history: a stale or lost
            // history would answer with another number.
            expect(reply).toContain(`turn ${turn}.`);
            expect(reply).toContain(`${id} message ${turn}`);
            messages = chat.messages;
          } catch (err) {
            errors.push(
              `${id} turn ${turn}: ${err instanceof Error ? err.message || err.name : String(err)}`,
            );
            return;
          }
        }
      }),
    );
    expect(errors).toEqual([]);
    for (const id of ids) {
      const served = servedBy.get(id)!;
      expect(served).toHaveLength(TURNS);
      for (let t = 1; t < served.length; t++) expect(served[t]).not.toBe(served[t - 1]);
    }
    // Every history read back exact, from every instance.
    for (const [n, id] of ids.entries()) {
      const res = await fetch(`${services[n % INSTANCES]!.url}/api/chat/${id}/messages`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { messages: UIMessage[] };
      expect(body.messages.map((m) => m.role)).toEqual(
        Array.from({ length: TURNS }, () => ["user", "assistant"]).flat(),
      );
      for (let turn = 1; turn <= TURNS; turn++) {
        expect(textOf(body.messages[2 * (turn - 1)])).toBe(`${id} message ${turn}`);
        expect(textOf(body.messages[2 * turn - 1])).toContain(`turn ${turn}.`);
      }
    }
    expect(logs.flat().filter((l) => l.level >= 50)).toEqual([]);
  }, 240_000);

  it("the cleanup ran once per tick across the three instances", async () => {
    const done = () =>
      logs.flatMap((lines) => lines.filter((l) => l.msg === "cleanup run done").map((l) => l.tick));
    // Counted: wait for six sweeps, however long the machine takes (the test timeout bounds it).
    while (done().length < 6 || (await countRows(admin, schema, "old-")).threads > 0) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const ticks = done();
    expect(new Set(ticks).size).toBe(ticks.length);
    const skipped = logs.map(
      (lines) => lines.filter((l) => l.msg.startsWith("cleanup skipped: another instance")).length,
    );
    expect(skipped.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect((await countRows(admin, schema, "old-")).threads).toBe(0);
  }, 120_000);
});

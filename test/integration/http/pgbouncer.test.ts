import { randomUUID } from "node:crypto";
import pino from "pino";
import type { UIMessage } from "ai";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import { migrate } from "../../../src/db/migrator.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { pgbouncerUrl } from "../../helpers/pgbouncer.js";
import { backdate, countRows, seedThreads } from "../cleanup/fixtures.js";
import { aiChat, say, testConfig } from "./helpers.js";

// Two service instances on one schema, both through PgBouncer in transaction mode (prepared
// statements off, as documented), each with its cleanup schedule firing every second.
const admin = testPool(2);
const schema = uniqueSchema("tl_http_bouncer");
const services: RunningService[] = [];
const logs: Array<Array<{ msg: string; tick?: string; level: number }>> = [];

beforeAll(async () => {
  await requirePostgres();
  const url = pgbouncerUrl();
  await migrate(admin, { schema });
  // Expired threads for the schedules to find.
  await seedThreads(admin, schema, { prefix: "old-", threads: 40, checkpoints: 2 });
  await backdate(admin, schema, "old-", "8 days");
  for (let i = 0; i < 2; i++) {
    const lines: (typeof logs)[number] = [];
    logs.push(lines);
    const logger = pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
    );
    const config = testConfig(schema, {
      database: { url, preparedStatements: false },
      cleanup: { enabled: true, schedule: "* * * * * *", ttl: "7d", batchSize: 10 },
    });
    services.push(await startService(config, { logger }));
  }
});
afterAll(async () => {
  for (const s of services) await s.shutdown("test");
  await dropSchema(admin, schema);
  await admin.end();
});

describe("the service through PgBouncer (transaction mode)", () => {
  it("a chat whose turns alternate between the two instances keeps its whole history", async () => {
    const id = `bouncer-${randomUUID()}`;
    let messages: UIMessage[] = [];
    for (let turn = 1; turn <= 4; turn++) {
      const chat = aiChat(services[turn % 2]!.url, id, { messages, lastMessageOnly: true });
      expect(await say(chat, `message ${turn}`)).toContain(`turn ${turn}`);
      messages = chat.messages;
    }
    const res = await fetch(`${services[0]!.url}/api/chat/${id}/messages`);
    const body = (await res.json()) as { messages: UIMessage[] };
    expect(body.messages).toHaveLength(8);
    const health = await (await fetch(`${services[1]!.url}/health/db`)).json();
    expect(health).toMatchObject({ status: "ok", mode: "primary" });
  });

  it("the two instances' cleanup schedules sweep once per tick between them", async () => {
    const done = () =>
      logs.flatMap((lines) => lines.filter((l) => l.msg === "cleanup run done").map((l) => l.tick));
    const deadline = Date.now() + 30_000;
    while (done().length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const ticks = done();
    expect(ticks.length).toBeGreaterThanOrEqual(4);
    expect(new Set(ticks).size).toBe(ticks.length);
    // Both instances took part: each tick one swept, the other skipped it.
    const skipped = logs.map(
      (lines) => lines.filter((l) => l.msg.startsWith("cleanup skipped: another instance")).length,
    );
    expect(skipped.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect((await countRows(admin, schema, "old-")).threads).toBe(0);
    expect(logs.flat().filter((l) => l.level >= 50)).toEqual([]);
  });
});

import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { RunningService } from "../../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { StatementRecorder } from "../../helpers/statements.js";
import { chatBody, readSse, startTestService, testConfig } from "./helpers.js";

// Decision H32: the route's read of the thread is the graph's read too.
describe("chat turn reads", () => {
  const schema = uniqueSchema("http_turn_reads");
  const recorder = new StatementRecorder();
  let pool: pg.Pool;
  let service: RunningService;

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(1);
    service = await startTestService(testConfig(schema));
    recorder.install();
  });
  afterAll(async () => {
    recorder.uninstall();
    await service.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
  });

  const post = (id: string, text: string, messageId?: string) =>
    fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(id, text, messageId),
    });
  const text = (events: Awaited<ReturnType<typeof readSse>>) =>
    events.map((e) => (e !== "[DONE]" && e.type === "text-delta" ? String(e.delta) : "")).join("");
  const reads = (statements: string[]) =>
    statements.filter((s) => /FROM\s+\S+\.checkpoints\s+WHERE/.test(s)).length;

  it("a turn on an existing thread reads the thread's checkpoint once and answers from it", async () => {
    const id = `reads-${randomUUID()}`;
    await readSse(await post(id, "first"));
    let events: Awaited<ReturnType<typeof readSse>> = [];
    const statements = await recorder.record(async () => {
      events = await readSse(await post(id, "second"));
    });
    expect(text(events)).toContain("turn 2");
    expect(reads(statements)).toBe(1);
  });

  it("a resent message id still replaces the reply it had (the kept read holds the history)", async () => {
    const id = `reads-${randomUUID()}`;
    await readSse(await post(id, "first", "u1"));
    await readSse(await post(id, "second", "u2"));
    const again = text(await readSse(await post(id, "second again", "u2")));
    expect(again).toContain("turn 2");
    const messages = (await (await fetch(`${service.url}/api/chat/${id}/messages`)).json()) as {
      messages: unknown[];
    };
    expect(messages.messages).toHaveLength(4);
  });
});

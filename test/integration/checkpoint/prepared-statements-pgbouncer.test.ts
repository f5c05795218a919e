import { randomUUID } from "node:crypto";
import type { BaseMessage } from "@langchain/core/messages";
import pg from "pg";
import pino from "pino";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/index.js";
import { attachPoolErrorHandler } from "../../../src/db/pool.js";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import type { Logger } from "../../../src/logger.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { chatGraph, chatTurn } from "../../helpers/graph.js";
import { pgbouncerUrl } from "../../helpers/pgbouncer.js";
import { aiChat, say, testConfig } from "../http/helpers.js";

// Regression: with prepared statements left on (the default) behind PgBouncer in transaction
// mode, 59% of service turns failed with "prepared statement ... already exists / does not
// exist" while /health/db said ok. Threadline now switches to unnamed statements at the first
// such error and retries the call.
const admin = testPool(2);
const schemas: string[] = [];
const pools: pg.Pool[] = [];
let service: RunningService | undefined;

beforeAll(requirePostgres);
afterAll(async () => {
  await service?.shutdown("test");
  for (const p of pools) await p.end();
  for (const s of schemas) await dropSchema(admin, s);
  await admin.end();
});

function bouncerPool(): pg.Pool {
  const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: pgbouncerUrl(), max: 8 }));
  pools.push(pool);
  return pool;
}

describe("prepared statements left on behind PgBouncer (transaction mode)", () => {
  it("concurrent graph turns from two processes' worth of pools all succeed; the checkpointer switches to unnamed statements and says so once", async () => {
    const schema = uniqueSchema("tl_prep_bouncer");
    schemas.push(schema);
    const warnings: string[] = [];
    const logger: Logger = {
      error: () => undefined,
      info: () => undefined,
      debug: () => undefined,
      warn: (_obj: object, msg?: string) => void warnings.push(msg ?? ""),
    };
    const savers = [bouncerPool(), bouncerPool()].map(
      (pool) => new PostgresCheckpointer(pool, { schema, logger }),
    );
    await savers[0]!.setup();
    expect(savers.every((s) => s.usesPreparedStatements)).toBe(true);
    const graphs = savers.map((s) => chatGraph(s));
    const threads = Array.from({ length: 24 }, (_, i) => `prep-${i}`);
    for (let turn = 1; turn <= 4; turn++) {
      // Consecutive turns of a thread alternate between the two savers.
      const results = await Promise.allSettled(
        threads.map((t, i) => chatTurn(graphs[(i + turn) % 2]!, t, `user ${turn}`)),
      );
      const failed = results.filter((r) => r.status === "rejected");
      expect(failed).toEqual([]);
      for (const r of results) {
        const messages = (r as PromiseFulfilledResult<BaseMessage[]>).value;
        expect(messages).toHaveLength(turn * 2);
      }
    }
    // The pooler did mix statements up (otherwise this test proves nothing), and each saver
    // that saw it switched once.
    const switched = savers.filter((s) => !s.usesPreparedStatements).length;
    expect(switched).toBeGreaterThan(0);
    expect(warnings.filter((w) => w.includes("preparedStatements: false"))).toHaveLength(switched);
  });

  it("the service with the default setting: 20 concurrent chats of 3 turns, 0 errors, /health/db ok", async () => {
    const schema = uniqueSchema("tl_prep_bouncer_http");
    schemas.push(schema);
    const config = testConfig(schema, { database: { url: pgbouncerUrl() } });
    expect(config.database.preparedStatements).toBe(true);
    service = await startService(config, { logger: pino({ level: "silent" }), cleanup: false });
    const url = service.url;
    const chats = Array.from({ length: 20 }, () => aiChat(url, `prep-${randomUUID()}`));
    for (let turn = 1; turn <= 3; turn++) {
      const replies = await Promise.allSettled(chats.map((c) => say(c, `message ${turn}`)));
      expect(replies.filter((r) => r.status === "rejected")).toEqual([]);
      for (const r of replies) {
        expect((r as PromiseFulfilledResult<string>).value).toContain(`turn ${turn}`);
      }
    }
    const health = await (await fetch(`${url}/health/db`)).json();
    expect(health).toMatchObject({ status: "ok", mode: "primary", pending: 0 });
  });
});

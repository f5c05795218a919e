import { deltaChannelHistoryTests, validate } from "@langchain/langgraph-checkpoint-validation";
import { afterAll, describe, expect } from "vitest";
import { FallbackCheckpointer } from "../../../../src/checkpoint/fallback/index.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../../helpers/db.js";

// The official conformance suite against FallbackCheckpointer while Postgres is up (every call
// goes through to PostgresCheckpointer). Each checkpointer gets a fresh schema: an isolated store.
const pool = testPool(8);
const created: string[] = [];

const initializer = {
  checkpointerName: "FallbackCheckpointer (primary mode)",
  beforeAll: requirePostgres,
  async createCheckpointer() {
    const schema = uniqueSchema("tl_fb_conf");
    created.push(schema);
    const primary = new PostgresCheckpointer(pool, { schema });
    const saver = new FallbackCheckpointer(primary, { setup: () => primary.setup() });
    await saver.start();
    expect(saver.status().mode).toBe("primary");
    return saver;
  },
  async destroyCheckpointer(saver: FallbackCheckpointer) {
    expect(saver.status()).toMatchObject({ mode: "primary", pending: 0, transitions: 0 });
    await saver.close();
  },
};

validate(initializer);
describe(initializer.checkpointerName, () => deltaChannelHistoryTests(initializer));

afterAll(async () => {
  for (const schema of created.splice(0)) await dropSchema(pool, schema);
  await pool.end();
});

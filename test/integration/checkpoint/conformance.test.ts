import { randomBytes } from "node:crypto";
import pg from "pg";
import { deltaChannelHistoryTests, validate } from "@langchain/langgraph-checkpoint-validation";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { attachPoolErrorHandler } from "../../../src/db/pool.js";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";

// The official conformance suite on the literal default schema `public` (no `schema` option at
// all) and on a custom one, as the official saver's own tests do. Each checkpointer gets an
// isolated store: `public` in a database of its own (created here, dropped after), so nothing
// else that uses the test database's `public` can collide with it; the custom schema in a fresh
// schema of the test database.
const pool = testPool(8);
const createdSchemas: string[] = [];
const createdDatabases: Array<{ name: string; pool: pg.Pool }> = [];

/** The test database's URL with another database name. */
function urlFor(database: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

async function freshDatabase(): Promise<pg.Pool> {
  const name = `tl_conf_public_${randomBytes(5).toString("hex")}`;
  await pool.query(`CREATE DATABASE "${name}"`);
  const dbPool = attachPoolErrorHandler(new pg.Pool({ connectionString: urlFor(name), max: 8 }));
  createdDatabases.push({ name, pool: dbPool });
  return dbPool;
}

const initializers = [
  {
    checkpointerName: "PostgresCheckpointer (default schema public)",
    beforeAll: requirePostgres,
    async createCheckpointer() {
      const saver = new PostgresCheckpointer(await freshDatabase());
      await saver.setup();
      return saver;
    },
  },
  {
    checkpointerName: "PostgresCheckpointer (custom schema)",
    beforeAll: requirePostgres,
    async createCheckpointer() {
      const schema = uniqueSchema("tl_custom_conf");
      createdSchemas.push(schema);
      const saver = new PostgresCheckpointer(pool, { schema });
      await saver.setup();
      return saver;
    },
  },
];

for (const initializer of initializers) {
  validate(initializer);
  // The opt-in suite for getDeltaChannelHistory (LangGraph's beta delta channels).
  describe(initializer.checkpointerName, () => deltaChannelHistoryTests(initializer));
}

describe("the default-schema run", () => {
  it("stores in the literal public schema of its own database", async () => {
    const dbPool = await freshDatabase();
    const saver = new PostgresCheckpointer(dbPool);
    await saver.setup();
    const { rows } = await dbPool.query<{ schema: string }>(
      "SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'checkpoints'",
    );
    expect(rows).toEqual([{ schema: "public" }]);
  });
});

afterAll(async () => {
  for (const schema of createdSchemas.splice(0)) await dropSchema(pool, schema);
  for (const { name, pool: dbPool } of createdDatabases.splice(0)) {
    await dbPool.end();
    await pool.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
  await pool.end();
});

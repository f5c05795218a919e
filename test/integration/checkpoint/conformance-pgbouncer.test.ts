import { validate } from "@langchain/langgraph-checkpoint-validation";
import pg from "pg";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/index.js";
import { attachPoolErrorHandler } from "../../../src/db/pool.js";
import { dropSchema, testPool, uniqueSchema } from "../../helpers/db.js";
import { pgbouncerUrl } from "../../helpers/pgbouncer.js";

// The official conformance suite through PgBouncer in transaction mode, with prepared statements
// off (the documented setting). Left on, see prepared-statements-pgbouncer.test.ts.
const admin = testPool(1);
const pools: pg.Pool[] = [];
const created: string[] = [];

for (const prepared of [false]) {
  validate({
    checkpointerName: `PostgresCheckpointer through PgBouncer (preparedStatements: ${prepared})`,
    beforeAll: () => void pgbouncerUrl(),
    async createCheckpointer() {
      const pool = attachPoolErrorHandler(
        new pg.Pool({ connectionString: pgbouncerUrl(), max: 8 }),
      );
      pools.push(pool);
      const schema = uniqueSchema("tl_conf_bouncer");
      created.push(schema);
      const saver = new PostgresCheckpointer(pool, { schema, preparedStatements: prepared });
      await saver.setup();
      return saver;
    },
  });
}

afterAll(async () => {
  for (const pool of pools.splice(0)) await pool.end();
  for (const schema of created.splice(0)) await dropSchema(admin, schema);
  await admin.end();
});

import { deltaChannelHistoryTests, validate } from "@langchain/langgraph-checkpoint-validation";
import { PostgresCheckpointer } from "../../src/checkpoint/postgres/saver.js";
import { citusPool, distributedSchema, dropCitusSchema, requireCitus } from "./helpers.js";

// The official conformance suite on a schema whose thread-keyed tables are distributed by
// thread_id and co-located (threadline_distribute), through the coordinator.
const pool = citusPool(8);
const schemas: string[] = [];

const initializer = {
  checkpointerName: "PostgresCheckpointer (Citus, distributed by thread_id)",
  beforeAll: () => requireCitus(pool),
  async createCheckpointer() {
    const schema = await distributedSchema(pool, "tl_citus_conf");
    schemas.push(schema);
    return new PostgresCheckpointer(pool, { schema });
  },
};

validate(initializer);
describe(initializer.checkpointerName, () => deltaChannelHistoryTests(initializer));

afterAll(async () => {
  for (const schema of schemas.splice(0)) await dropCitusSchema(pool, schema);
  await pool.end();
});

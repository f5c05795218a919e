import { deltaChannelHistoryTests, validate } from "@langchain/langgraph-checkpoint-validation";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";

// The official conformance suite, on the default-like schema name and on a custom one, as the
// official saver's own tests do. Each checkpointer gets a fresh schema (isolated store).
const pool = testPool(8);
const created: string[] = [];

for (const label of ["default", "custom"] as const) {
  const initializer = {
    checkpointerName: `PostgresCheckpointer (${label} schema)`,
    beforeAll: requirePostgres,
    async createCheckpointer() {
      const schema = uniqueSchema(label === "default" ? "tl_conf" : "tl_custom_conf");
      created.push(schema);
      const saver = new PostgresCheckpointer(pool, { schema });
      await saver.setup();
      return saver;
    },
  };
  validate(initializer);
  // The opt-in suite for getDeltaChannelHistory (LangGraph's beta delta channels).
  describe(initializer.checkpointerName, () => deltaChannelHistoryTests(initializer));
}

afterAll(async () => {
  for (const schema of created.splice(0)) await dropSchema(pool, schema);
  await pool.end();
});

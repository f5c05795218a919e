import type pg from "pg";
import { Statements } from "../../src/checkpoint/postgres/statements.js";
import { citusPool, distributedSchema, dropCitusSchema, requireCitus } from "./helpers.js";

// The reads of the hot path are single-shard router queries on a distributed schema: Citus sends
// the whole statement to one worker (one task, no subplan pulled to the coordinator).
const pool = citusPool(2);
let schema: string;

beforeAll(async () => {
  await requireCitus(pool);
  schema = await distributedSchema(pool, "tl_citus_router");
});
afterAll(async () => {
  if (schema) await dropCitusSchema(pool, schema);
  await pool.end();
});

async function plan(p: pg.Pool, text: string, params: unknown[]): Promise<string> {
  const { rows } = await p.query<{ "QUERY PLAN": string }>(`EXPLAIN (COSTS OFF) ${text}`, params);
  return rows.map((r) => r["QUERY PLAN"]).join("\n");
}

describe("hot-path reads on Citus", () => {
  it("getTuple (latest, by id), list of a thread, pending sends and delta history route to one shard", async () => {
    const st = new Statements(schema);
    const none: string[] = [];
    const cases: Array<[string, string, unknown[]]> = [
      ["getLatest", st.getLatest.text, ["t1", "", none, none, none]],
      ["getById", st.getById.text, ["t1", "", "c1", none, none, none]],
      ["list", st.list(["thread_id = $1", "checkpoint_ns = $2"], "$3").text, ["t1", "", 10]],
      ["pendingSends", st.pendingSends.text, ["t1", "", ["c1"]]],
      ["deltaHistory", st.deltaHistory.text, ["t1", "", null, ["messages"]]],
    ];
    const notRouted: string[] = [];
    for (const [name, text, params] of cases) {
      const p = await plan(pool, text, params);
      if (!/Task Count: 1\b/.test(p) || /Distributed Subplan/.test(p))
        notRouted.push(`${name}:\n${p}`);
    }
    expect(notRouted).toEqual([]);
  });
});

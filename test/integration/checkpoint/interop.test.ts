import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import type { BaseCheckpointSaver, CheckpointTuple } from "@langchain/langgraph-checkpoint";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { chatGraph, chatTurn } from "../../helpers/graph.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";

const pool = testPool(4);
const schemas: string[] = [];
beforeAll(requirePostgres);
afterAll(async () => {
  for (const s of schemas) await dropSchema(pool, s);
  await pool.end();
});

async function history(saver: BaseCheckpointSaver, threadId: string): Promise<CheckpointTuple[]> {
  const out: CheckpointTuple[] = [];
  for await (const t of saver.list({ configurable: { thread_id: threadId, checkpoint_ns: "" } }))
    out.push(t);
  return out;
}

const contents = (tuple: CheckpointTuple | undefined) =>
  ((tuple?.checkpoint.channel_values.messages ?? []) as Array<{ content: unknown }>).map(
    (m) => m.content,
  );

describe("interoperability with @langchain/langgraph-checkpoint-postgres", () => {
  it("reads and resumes a thread written by the official PostgresSaver after adopting its schema", async () => {
    const schema = uniqueSchema("tl_interop_a");
    schemas.push(schema);
    const official = new PostgresSaver(pool, undefined, { schema });
    await official.setup();
    const officialGraph = chatGraph(official);
    for (let i = 1; i <= 3; i++) await chatTurn(officialGraph, "t-official", `hello ${i}`);
    const before = await history(official, "t-official");

    const ours = new PostgresCheckpointer(pool, { schema });
    await ours.setup(); // adopts: additive migrations only
    const after = await history(ours, "t-official");
    expect(after.map((t) => t.checkpoint.id)).toEqual(before.map((t) => t.checkpoint.id));
    for (let i = 0; i < before.length; i++) {
      expect(after[i]!.checkpoint).toEqual(before[i]!.checkpoint);
      expect(after[i]!.metadata).toEqual(before[i]!.metadata);
      expect(after[i]!.pendingWrites).toEqual(before[i]!.pendingWrites);
      expect(after[i]!.parentConfig).toEqual(before[i]!.parentConfig);
    }
    const latest = await ours.getTuple({ configurable: { thread_id: "t-official" } });
    expect(contents(latest)).toHaveLength(6);

    // The official saver still works on the adopted schema (its ledger says v4).
    await official.setup();
    expect(
      contents(await official.getTuple({ configurable: { thread_id: "t-official" } })),
    ).toHaveLength(6);

    const messages = await chatTurn(chatGraph(ours), "t-official", "hello 4");
    expect(messages).toHaveLength(8);
    expect(messages[7]!.text).toContain("turn 4");
    expect(
      contents(await ours.getTuple({ configurable: { thread_id: "t-official" } })),
    ).toHaveLength(8);
  });

  it("with storage 'full', the official saver reads and resumes a thread Threadline wrote", async () => {
    const schema = uniqueSchema("tl_interop_b");
    schemas.push(schema);
    const ours = new PostgresCheckpointer(pool, { schema, storage: "full" });
    await ours.setup();
    const graph = chatGraph(ours);
    for (let i = 1; i <= 3; i++) await chatTurn(graph, "t-ours", `hi ${i}`);
    const mine = await history(ours, "t-ours");

    const official = new PostgresSaver(pool, undefined, { schema });
    await official.setup(); // no-op: Threadline recorded the official ledger
    const theirs = await history(official, "t-ours");
    expect(theirs.map((t) => t.checkpoint)).toEqual(mine.map((t) => t.checkpoint));
    expect(theirs.map((t) => t.pendingWrites)).toEqual(mine.map((t) => t.pendingWrites));
    const messages = await chatTurn(chatGraph(official), "t-ours", "hi 4");
    expect(messages).toHaveLength(8);
    expect(messages[7]!.text).toContain("turn 4");
    // ...and Threadline reads what the official saver appended.
    expect(contents(await ours.getTuple({ configurable: { thread_id: "t-ours" } }))).toHaveLength(
      8,
    );
  });

  it("with the default delta storage the official saver fails loudly instead of reading partial values", async () => {
    const schema = uniqueSchema("tl_interop_c");
    schemas.push(schema);
    const ours = new PostgresCheckpointer(pool, { schema });
    await ours.setup();
    const graph = chatGraph(ours);
    for (let i = 1; i <= 3; i++) await chatTurn(graph, "t-delta", `hi ${i}`);
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM "${schema}".checkpoint_blobs WHERE type LIKE 'delta%'`,
    );
    expect(rows[0].n).toBeGreaterThan(0);
    const official = new PostgresSaver(pool, undefined, { schema });
    await expect(official.getTuple({ configurable: { thread_id: "t-delta" } })).rejects.toThrow(
      /Unknown serialization type/,
    );
  });
});

import { HumanMessage } from "@langchain/core/messages";
import type { Redis } from "ioredis";
import type pg from "pg";
import { PostgresCheckpointer } from "../../../src/checkpoint/index.js";
import { importRedis, type ImportSummary } from "../../../src/importer/index.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import {
  chatGraph,
  connectRedis,
  contents,
  deleteKeys,
  FIXTURE_FORMATS,
  isShallow,
  recordConversation,
  uniqueToken,
  writeFixture,
  type Conversation,
  type FixtureFormat,
} from "./fixtures.js";

const token = uniqueToken("tlfmt");
let redis: Redis;
let pool: pg.Pool;
const schema = uniqueSchema("imp_formats");
const fullSchema = uniqueSchema("imp_formats_full");
const conversations = new Map<FixtureFormat, Conversation>();
let first: ImportSummary;

const threadOf = (format: FixtureFormat) => `${token}-${format}`;

beforeAll(async () => {
  await requirePostgres();
  redis = await connectRedis();
  pool = testPool(6);
  for (const format of FIXTURE_FORMATS) {
    // Two turns, the first with a tool call: Human, AI(tool_calls), Tool, AI, Human, AI.
    const conv = await recordConversation(threadOf(format), ["weather in sf?", "thanks"]);
    conversations.set(format, conv);
    await writeFixture(redis, format, conv);
  }
  first = await importRedis({
    redis,
    pool,
    schema,
    match: `*${token}*`,
    batchSize: 3,
    concurrency: 2,
    verify: true,
  });
});

afterAll(async () => {
  await deleteKeys(redis, token);
  redis.disconnect();
  await dropSchema(pool, schema);
  await dropSchema(pool, fullSchema);
  await pool.end();
});

describe("import-redis formats", () => {
  it("detects every format and imports every thread with no rejects", () => {
    expect(first.invalid).toBe(0);
    expect(first.threadsImported).toBe(FIXTURE_FORMATS.length);
    expect(first.checkpointsImported).toBe(FIXTURE_FORMATS.length);
    expect(Object.keys(first.formats).sort()).toEqual([
      "checkpoint-redis",
      "howto-colon",
      "howto-dollar",
      "js",
      "js-shallow",
      "python",
      "python-0.0",
      "python-shallow",
    ]);
    expect(first.conversions["python-lc-id"]).toBeGreaterThan(0);
  });

  it("verify reads every imported thread back identical to the source", () => {
    expect(first.verify?.threads).toBe(FIXTURE_FORMATS.length);
    expect(first.verify?.examples).toEqual([]);
    expect(first.verify?.mismatches).toBe(0);
  });

  it.each(FIXTURE_FORMATS)(
    "a graph on PostgresCheckpointer resumes the %s thread with its full history",
    async (format) => {
      const conv = conversations.get(format)!;
      const checkpointer = new PostgresCheckpointer(pool, { schema });
      const graph = chatGraph(checkpointer);
      const config = { configurable: { thread_id: threadOf(format) } };
      const state = await graph.getState(config);
      const restored = (state.values as { messages: HumanMessage[] }).messages;
      expect(restored).toHaveLength(6);
      expect(contents(restored)).toEqual(contents(conv.messages));
      const tool = restored.find((m) => m.getType() === "tool") as unknown as {
        tool_call_id: string;
      };
      expect(tool.tool_call_id).toBe("call_1");

      const out = await graph.invoke({ messages: [new HumanMessage("and tomorrow?")] }, config);
      expect(out.messages).toHaveLength(8);
      expect(contents(out.messages).slice(0, 6)).toEqual(contents(conv.messages));
      // The agent counts the human messages it sees: 3 means the imported history was there.
      expect(out.messages[7]!.content).toBe("turn 3");
    },
  );

  it("a second run imports nothing and skips every thread", async () => {
    const again = await importRedis({ redis, pool, schema, match: `*${token}*` });
    expect(again).toMatchObject({
      threadsImported: 0,
      checkpointsImported: 0,
      writesImported: 0,
      invalid: 0,
    });
    expect(again.skipped).toBe(FIXTURE_FORMATS.length);
  });

  it("history full imports every checkpoint with its pending writes", async () => {
    const summary = await importRedis({
      redis,
      pool,
      schema: fullSchema,
      match: `*${token}*`,
      history: "full",
      verify: true,
    });
    expect(summary.invalid).toBe(0);
    expect(summary.verify?.mismatches).toBe(0);
    const expected = FIXTURE_FORMATS.reduce(
      (n, f) => n + (isShallow(f) ? 1 : conversations.get(f)!.checkpoints.length),
      0,
    );
    expect(summary.checkpointsImported).toBe(expected);
    expect(summary.writesImported).toBeGreaterThan(0);
    const checkpointer = new PostgresCheckpointer(pool, { schema: fullSchema });
    for (const format of FIXTURE_FORMATS.filter((f) => !isShallow(f))) {
      const conv = conversations.get(format)!;
      const listed = [];
      for await (const t of checkpointer.list({ configurable: { thread_id: threadOf(format) } }))
        listed.push(t);
      expect(listed.map((t) => t.checkpoint.id)).toEqual(
        conv.checkpoints.map((c) => c.id).reverse(),
      );
      // Python 0.0.x keyed checkpoints by their parent's id: the parent links must be the real ones.
      expect(
        listed.map(
          (t) => (t.parentConfig?.configurable?.checkpoint_id as string | undefined) ?? null,
        ),
      ).toEqual(conv.checkpoints.map((c) => c.parentId).reverse());
      const withWrites = conv.checkpoints.find((c) => c.writes.length > 0)!;
      const tuple = listed.find((t) => t.checkpoint.id === withWrites.id)!;
      expect(tuple.pendingWrites?.map(([, ch]) => ch).sort()).toEqual(
        withWrites.writes.map((w) => w.channel).sort(),
      );
    }
  });

  it("imported threads keep their source activity time", async () => {
    const { rows } = await pool.query<{ thread_id: string; last_activity: Date }>(
      `SELECT thread_id, last_activity FROM "${schema}".checkpoint_threads WHERE thread_id = $1`,
      [threadOf("js-legacy")],
    );
    const conv = conversations.get("js-legacy")!;
    // The resume above added a live checkpoint, so compare in the full-history schema.
    const full = await pool.query<{ last_activity: Date }>(
      `SELECT last_activity FROM "${fullSchema}".checkpoint_threads WHERE thread_id = $1`,
      [threadOf("js-legacy")],
    );
    expect(rows).toHaveLength(1);
    expect(full.rows[0]!.last_activity.toISOString()).toBe(
      new Date(conv.checkpoints.at(-1)!.ts).toISOString(),
    );
  });
});

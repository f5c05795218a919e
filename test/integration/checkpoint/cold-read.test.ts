import {
  AIMessage,
  AIMessageChunk,
  HumanMessage,
  type BaseMessage,
} from "@langchain/core/messages";
import {
  JsonPlusSerializer,
  emptyCheckpoint,
  uuid6,
  type CheckpointTuple,
} from "@langchain/langgraph-checkpoint";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { installedSchema, testPool } from "../../helpers/db.js";

// A process that holds nothing of a thread (another instance, a restart) assembles every delta
// chain from its rows: decoded synchronously where the fast decoder takes a row, through the
// serializer's async path where it does not, and through the serializer alone with a custom one.
const { schema } = installedSchema("tl_cold_read");
const pool = testPool(4);
afterAll(() => pool.end());

/** A thread of `turns` checkpoints whose messages grow by two per turn (stored as deltas). */
async function writeThread(threadId: string, turns: number, chunkEvery: number) {
  const writer = new PostgresCheckpointer(pool, { schema });
  const messages: BaseMessage[] = [];
  const ids: string[] = [];
  const expected: string[][] = [];
  let parent: string | undefined;
  for (let v = 1; v <= turns; v++) {
    const i = messages.length;
    // An AIMessageChunk carries lc:2 fields, which only the serializer revives.
    const reply =
      v % chunkEvery === 0
        ? new AIMessageChunk({
            content: `chunk reply ${i + 1} ${"words ".repeat(30)}`,
            id: `c-${i}`,
          })
        : new AIMessage({ content: `reply ${i + 1} ${"words ".repeat(30)}`, id: `a-${i}` });
    messages.push(
      new HumanMessage({ content: `question ${i} ${"more ".repeat(30)}`, id: `h-${i}` }),
      reply,
    );
    const cp = emptyCheckpoint();
    cp.id = uuid6(-1);
    cp.channel_values = { messages: messages.slice(), step: v };
    cp.channel_versions = { messages: v, step: v };
    await writer.put(
      {
        configurable: {
          thread_id: threadId,
          checkpoint_ns: "",
          ...(parent ? { checkpoint_id: parent } : {}),
        },
      },
      cp,
      { source: "loop", step: v, parents: {} },
      { messages: v, step: v },
    );
    await writer.putWrites(
      { configurable: { thread_id: threadId, checkpoint_ns: "", checkpoint_id: cp.id } },
      [
        [
          "messages",
          [
            v % 2 === 0
              ? new AIMessageChunk({ content: `w ${v}`, id: `wc-${v}` })
              : new AIMessage({ content: `w ${v} ${"x ".repeat(80)}`, id: `w-${v}` }),
          ],
        ],
        ["branch:to:model", null],
      ],
      `task-${v}`,
    );
    parent = cp.id;
    ids.push(cp.id);
    expected.push(messages.map((m) => `${m.constructor.name}:${m.text}`));
  }
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM "${schema}".checkpoint_blobs WHERE thread_id = $1 AND delta_base IS NOT NULL`,
    [threadId],
  );
  expect(Number(rows[0]!.n)).toBe(turns - 1);
  return { ids, expected };
}

const shown = (tuple: CheckpointTuple | undefined) =>
  ((tuple?.checkpoint.channel_values.messages ?? []) as BaseMessage[]).map(
    (m) => `${m.constructor.name}:${m.text}`,
  );
const writesShown = (tuple: CheckpointTuple | undefined) =>
  (tuple?.pendingWrites ?? []).map(([, channel, value]) =>
    Array.isArray(value)
      ? `${channel}:${(value as BaseMessage[]).map((m) => m.constructor.name).join()}`
      : `${channel}:${String(value)}`,
  );

describe("cold reads of delta chains", () => {
  it.each([
    ["the default serializer (fast decoder, serializer for the rows it declines)", undefined],
    ["a custom serializer (every row through its async path)", new JsonPlusSerializer()],
  ])("every checkpoint reads back whole with %s", async (_name, serde) => {
    const threadId = `cold-${Math.random()}`;
    const { ids, expected } = await writeThread(threadId, 12, 3);
    const cold = new PostgresCheckpointer(pool, {
      schema,
      deltaCacheSize: 0,
      ...(serde ? { serde } : {}),
    });
    const latest = await cold.getTuple({
      configurable: { thread_id: threadId, checkpoint_ns: "" },
    });
    expect(shown(latest)).toEqual(expected.at(-1));
    expect(writesShown(latest)).toEqual(["messages:AIMessageChunk", "branch:to:model:null"]);
    for (const [i, id] of ids.entries()) {
      const tuple = await cold.getTuple({
        configurable: { thread_id: threadId, checkpoint_ns: "", checkpoint_id: id },
      });
      expect(shown(tuple)).toEqual(expected[i]);
    }
    // A list shares each decoded version between the checkpoints that extend it.
    const listed: string[][] = [];
    for await (const t of cold.list({ configurable: { thread_id: threadId, checkpoint_ns: "" } }))
      listed.push(shown(t));
    expect(listed).toEqual([...expected].reverse());
  });
});

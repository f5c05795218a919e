import { HumanMessage } from "@langchain/core/messages";
import type pg from "pg";
import { deltaGraph } from "../../../bench/instances.js";
import { FloorSaver, createFloorTable } from "../../../bench/turn-floor.js";
import { chatGraph } from "../../../bench/turn.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";

// The benchmarks' floor saver is what the round-robin and DeltaChannel targets are measured
// against: it must pay exactly one read per read and one commit per put (and per messages write
// when asked), on the pool it is given at that moment. Counts, not timings.
const pools = [testPool(2), testPool(2)];
const schema = uniqueSchema("floor_saver");
let table = "";
const acquires = [0, 0];
pools.forEach((p, i) => p.on("acquire", () => acquires[i]!++));

beforeAll(async () => {
  await requirePostgres();
  await pools[0]!.query(`CREATE SCHEMA "${schema}"`);
  table = await createFloorTable(pools[0]!, schema);
});
afterAll(async () => {
  await dropSchema(pools[0]!, schema);
  await Promise.all(pools.map((p) => p.end()));
});

/** Rows the floor savers committed (the ten read rows are k0..k9). */
const commits = async () =>
  Number(
    (await pools[0]!.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE id LIKE 'p%'`))
      .rows[0]!.n,
  );
const input = (turn: number) => ({ messages: [new HumanMessage(`message ${turn}`)] });

it("reads once and commits once per put, on the pool of the moment", async () => {
  let current: pg.Pool = pools[0]!;
  const graph = chatGraph(new FloorSaver(() => current, table));
  for (let turn = 0; turn < 4; turn++) {
    current = pools[turn % 2]!;
    const before = [...acquires];
    await graph.invoke(input(turn), { configurable: { thread_id: "chat" } });
    // One getTuple and three puts (input, after __start__, after the node), all on this pool.
    expect(acquires[turn % 2]! - before[turn % 2]!).toBe(4);
    expect(acquires[(turn + 1) % 2]).toBe(before[(turn + 1) % 2]);
  }
  expect(await commits()).toBe(12);
});

it("commits a DeltaChannel's writes on their own only when asked", async () => {
  const plain = new FloorSaver(() => pools[1]!, table);
  const delta = new FloorSaver(() => pools[1]!, table, new Set(["messages"]));
  const before = await commits();
  for (let turn = 0; turn < 3; turn++)
    await deltaGraph(plain).invoke(input(turn), { configurable: { thread_id: "d-plain" } });
  const afterPlain = await commits();
  // Three puts per turn, writes free.
  expect(afterPlain - before).toBe(9);
  for (let turn = 0; turn < 3; turn++)
    await deltaGraph(delta).invoke(input(turn), { configurable: { thread_id: "d-delta" } });
  // Plus the two writes of messages per turn (the input and the node's reply).
  expect((await commits()) - afterPlain).toBe(15);
  // The history read is one round trip too.
  const { config } = (await delta.getTuple({ configurable: { thread_id: "d-delta" } }))!;
  const before1 = acquires[1]!;
  const history = await delta.getDeltaChannelHistory({ config, channels: ["messages"] });
  expect(acquires[1]! - before1).toBe(1);
  expect(Object.keys(history)).toEqual(["messages"]);
});

import { randomUUID } from "node:crypto";
import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import {
  Annotation,
  DeltaChannel,
  MessagesAnnotation,
  StateGraph,
  messagesDeltaReducer,
  type Messages,
} from "@langchain/langgraph";
import { BaseCheckpointSaver, MemorySaver } from "@langchain/langgraph-checkpoint";
import type { RunnableConfig } from "@langchain/core/runnables";
import pg from "pg";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { installedSchema } from "../../helpers/db.js";

// getDeltaChannelHistory (LangGraph's DeltaChannel reads it at the start of every step) in one
// statement: the same result as the base class's walk (one getTuple per ancestor) for every
// checkpoint of a thread, with snapshots, and for a thread whose messages were a plain channel
// stored as Threadline delta rows before it became a DeltaChannel.

const { admin, schema } = installedSchema("tl_delta_history");

/** One-node chat graph whose `messages` is a DeltaChannel (snapshot every `every` updates). */
function deltaGraph(checkpointer: BaseCheckpointSaver, every: number) {
  const State = Annotation.Root({
    messages: new DeltaChannel<BaseMessage[], Messages>(messagesDeltaReducer, {
      snapshotFrequency: every,
    }),
  });
  return new StateGraph(State)
    .addNode("model", (state: typeof State.State) => ({
      messages: [new AIMessage({ id: randomUUID(), content: `reply ${state.messages.length}` })],
    }))
    .addEdge("__start__", "model")
    .addEdge("model", "__end__")
    .compile({ checkpointer });
}

/** The same graph on a plain messages channel (what a thread held before DeltaChannel). */
function plainGraph(checkpointer: BaseCheckpointSaver) {
  return new StateGraph(MessagesAnnotation)
    .addNode("model", (state: typeof MessagesAnnotation.State) => ({
      messages: [new AIMessage({ id: randomUUID(), content: `reply ${state.messages.length}` })],
    }))
    .addEdge("__start__", "model")
    .addEdge("model", "__end__")
    .compile({ checkpointer });
}

const say = (text: string) => ({
  messages: [new HumanMessage({ id: randomUUID(), content: text })],
});
const cfg = (thread: string) => ({ configurable: { thread_id: thread } });
const texts = (messages: BaseMessage[]) =>
  messages.map((m) => `${m.getType()}:${JSON.stringify(m.content)}`);

/** Statements the saver sends while `fn` runs (observed on pg's Client, not replaced). */
async function countStatements(fn: () => Promise<unknown>): Promise<number> {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let n = 0;
  proto.query = function (this: unknown, ...args: unknown[]) {
    n++;
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.query = original;
  }
  return n;
}

/** Every checkpoint's history from the saver and from the base class's walk on the same saver. */
async function compareWithWalk(saver: PostgresCheckpointer, thread: string): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the saver as this
  const walk = BaseCheckpointSaver.prototype.getDeltaChannelHistory;
  const configs: RunnableConfig[] = [];
  for await (const t of saver.list(cfg(thread))) configs.push(t.config);
  for (const config of [...configs, cfg(thread)]) {
    const options = { config, channels: ["messages", "absent"] };
    const ours = await saver.getDeltaChannelHistory(options);
    expect(ours).toEqual(await walk.call(saver, options));
  }
  return configs.length;
}

describe("getDeltaChannelHistory", () => {
  it("matches the base class's walk at every checkpoint, snapshots included, in one statement", async () => {
    const saver = new PostgresCheckpointer(admin, { schema });
    const memory = new MemorySaver();
    const thread = `dh-${randomUUID()}`;
    const graph = deltaGraph(saver, 3);
    const reference = deltaGraph(memory, 3);
    for (let turn = 1; turn <= 10; turn++) {
      await graph.invoke(say(`turn ${turn}`), cfg(thread));
      await reference.invoke(say(`turn ${turn}`), cfg(thread));
    }
    const state = await graph.getState(cfg(thread));
    const expected = await reference.getState(cfg(thread));
    expect(texts(state.values.messages as BaseMessage[])).toEqual(
      texts(expected.values.messages as BaseMessage[]),
    );
    expect(state.values.messages).toHaveLength(20);
    expect(await compareWithWalk(saver, thread)).toBeGreaterThan(20);

    // A process that did not write the thread: one statement, however many ancestors.
    const cold = new PostgresCheckpointer(admin, { schema, deltaCacheSize: 0 });
    const latest = (await cold.getTuple(cfg(thread)))!.config;
    const options = { config: latest, channels: ["messages"] };
    expect(await countStatements(() => cold.getDeltaChannelHistory(options))).toBe(1);
    const walked = await countStatements(() =>
      BaseCheckpointSaver.prototype.getDeltaChannelHistory.call(cold, options),
    );
    expect(walked).toBeGreaterThan(2);
  });

  it("without a snapshot walks back to the first checkpoint (no seed), in one statement", async () => {
    const saver = new PostgresCheckpointer(admin, { schema });
    const thread = `dh-${randomUUID()}`;
    const graph = deltaGraph(saver, 1000);
    for (let turn = 1; turn <= 6; turn++) await graph.invoke(say(`turn ${turn}`), cfg(thread));
    await compareWithWalk(saver, thread);
    const history = await saver.getDeltaChannelHistory({
      config: cfg(thread),
      channels: ["messages"],
    });
    expect(history.messages!.seed).toBeUndefined();
    expect(history.messages!.writes.length).toBeGreaterThanOrEqual(11);
  });

  it("continues a thread whose messages were a plain channel stored as delta rows", async () => {
    const saver = new PostgresCheckpointer(admin, { schema });
    const memory = new MemorySaver();
    const thread = `dh-${randomUUID()}`;
    for (const [s, g] of [
      [saver, plainGraph(saver)],
      [memory, plainGraph(memory)],
    ] as const) {
      for (let turn = 1; turn <= 4; turn++) await g.invoke(say(`plain ${turn}`), cfg(thread));
      void s;
    }
    // Stored as Threadline deltas: the seed of the walk is a delta row (its chain is read by
    // the checkpoint walk instead).
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".checkpoint_blobs
        WHERE thread_id = $1 AND channel = 'messages' AND type LIKE 'delta%'`,
      [thread],
    );
    expect(rows[0]!.n).toBeGreaterThan(0);
    const graph = deltaGraph(saver, 1000);
    const reference = deltaGraph(memory, 1000);
    for (let turn = 1; turn <= 3; turn++) {
      await graph.invoke(say(`delta ${turn}`), cfg(thread));
      await reference.invoke(say(`delta ${turn}`), cfg(thread));
    }
    const state = await graph.getState(cfg(thread));
    const expected = await reference.getState(cfg(thread));
    expect(state.values.messages).toHaveLength(14);
    expect(texts(state.values.messages as BaseMessage[])).toEqual(
      texts(expected.values.messages as BaseMessage[]),
    );
    await compareWithWalk(saver, thread);
  });
});

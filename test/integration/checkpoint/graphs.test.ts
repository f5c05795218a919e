import { Annotation, Command, END, START, StateGraph, interrupt } from "@langchain/langgraph";
import { MemorySaver, type BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { installedSchema, testPool } from "../../helpers/db.js";

// Whole LangGraph runs against PostgresCheckpointer (pending writes coalesced with puts, statements
// sent mid-step), each compared with the same run on MemorySaver.
const { schema } = installedSchema("tl_graphs");
const pool = testPool(6);
afterAll(() => pool.end());

const fresh = () => new PostgresCheckpointer(pool, { schema });
const thread = (name: string) => ({ configurable: { thread_id: `${name}-${Math.random()}` } });

const State = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

function approvalGraph(checkpointer: BaseCheckpointSaver) {
  return new StateGraph(State)
    .addNode("draft", () => ({ log: ["drafted"] }))
    .addNode("approve", () => {
      const answer = interrupt<string, string>("approve the draft?");
      return { log: [`approved: ${answer}`] };
    })
    .addNode("send", () => ({ log: ["sent"] }))
    .addEdge(START, "draft")
    .addEdge("draft", "approve")
    .addEdge("approve", "send")
    .addEdge("send", END)
    .compile({ checkpointer });
}

async function approvalRun(first: BaseCheckpointSaver, second: BaseCheckpointSaver) {
  const config = thread("approval");
  const paused = await approvalGraph(first).invoke({ log: ["start"] }, config);
  const state = await approvalGraph(second).getState(config);
  const resumed = await approvalGraph(second).invoke(new Command({ resume: "yes" }), config);
  const history: unknown[] = [];
  for await (const s of approvalGraph(second).getStateHistory(config)) history.push(s.values);
  return {
    paused: paused.log,
    next: state.next,
    interrupts: state.tasks.flatMap((t) => t.interrupts.map((i): unknown => i.value as unknown)),
    resumed: resumed.log,
    history,
  };
}

describe("LangGraph runs on PostgresCheckpointer", () => {
  it("an interrupt survives a change of process and resumes exactly as on MemorySaver", async () => {
    const memory = new MemorySaver();
    const expected = await approvalRun(memory, memory);
    // Paused by one checkpointer, inspected and resumed by another (another service instance).
    const actual = await approvalRun(fresh(), fresh());
    expect(actual).toEqual(expected);
    expect(actual.interrupts).toEqual(["approve the draft?"]);
    expect(actual.resumed).toEqual(["start", "drafted", "approved: yes", "sent"]);
  });

  it("a failed task is retried alone, from another process: its sibling's pending writes are reused", async () => {
    const run = async (first: BaseCheckpointSaver, second: BaseCheckpointSaver) => {
      const calls = { steady: 0, flaky: 0 };
      let fail = true;
      const build = (checkpointer: BaseCheckpointSaver) =>
        new StateGraph(State)
          .addNode("steady", () => {
            calls.steady++;
            return { log: ["steady"] };
          })
          .addNode("flaky", () => {
            calls.flaky++;
            if (fail) throw new Error("flaky failed");
            return { log: ["flaky"] };
          })
          .addEdge(START, "steady")
          .addEdge(START, "flaky")
          .addEdge("steady", END)
          .addEdge("flaky", END)
          .compile({ checkpointer });
      const config = thread("retry");
      await expect(build(first).invoke({ log: ["start"] }, config)).rejects.toThrow("flaky failed");
      fail = false;
      const done = await build(second).invoke(null, config);
      return { log: [...done.log].sort(), calls };
    };
    const memory = new MemorySaver();
    const expected = await run(memory, memory);
    const actual = await run(fresh(), fresh());
    expect(actual).toEqual(expected);
    expect(actual.calls).toEqual({ steady: 1, flaky: 2 });
  });

  it("parallel branches writing to one channel in a step give the same state and history", async () => {
    const run = async (checkpointer: BaseCheckpointSaver) => {
      const graph = new StateGraph(State)
        .addNode("a", () => ({ log: ["a"] }))
        .addNode("b", () => ({ log: ["b"] }))
        .addNode("c", () => ({ log: ["c"] }))
        .addNode("join", (s: typeof State.State) => ({ log: [`join of ${s.log.length}`] }))
        .addEdge(START, "a")
        .addEdge(START, "b")
        .addEdge(START, "c")
        .addEdge(["a", "b", "c"], "join")
        .addEdge("join", END)
        .compile({ checkpointer });
      const config = thread("fan");
      const turns: string[][] = [];
      for (let i = 0; i < 3; i++)
        turns.push((await graph.invoke({ log: [`turn ${i}`] }, config)).log);
      let steps = 0;
      for await (const _ of graph.getStateHistory(config)) steps++;
      return { turns, steps };
    };
    expect(await run(fresh())).toEqual(await run(new MemorySaver()));
  });
});

describe("an instance that wrote a thread a few turns ago", () => {
  function logGraph(checkpointer: BaseCheckpointSaver) {
    return new StateGraph(State)
      .addNode("say", (s: typeof State.State) => ({ log: [`reply ${s.log.length}`] }))
      .addEdge(START, "say")
      .addEdge("say", END)
      .compile({ checkpointer });
  }

  it("reads only the deltas written since, on top of the array it holds (the chain's start is not decoded)", async () => {
    const a = fresh();
    const b = fresh();
    const config = thread("held-prefix");
    for (let turn = 0; turn < 3; turn++) await logGraph(a).invoke({ log: [`a ${turn}`] }, config);
    for (let turn = 0; turn < 2; turn++) await logGraph(b).invoke({ log: [`b ${turn}`] }, config);
    const expected = (await fresh().getTuple(config))?.checkpoint.channel_values;
    const { rows } = await pool.query<{ root: string }>(
      `SELECT delta_root AS root FROM "${schema}".checkpoint_blobs
       WHERE thread_id = $1 AND channel = 'log' AND delta_root IS NOT NULL LIMIT 1`,
      [config.configurable.thread_id],
    );
    expect(rows).toHaveLength(1);
    // Spoil the full value the chain starts from: whoever decodes it fails.
    await pool.query(
      `UPDATE "${schema}".checkpoint_blobs SET blob = convert_to('{not json', 'UTF8')
       WHERE thread_id = $1 AND channel = 'log' AND version = $2`,
      [config.configurable.thread_id, rows[0]!.root],
    );
    await expect(fresh().getTuple(config)).rejects.toThrow();
    const read = await a.getTuple(config);
    expect(read?.checkpoint.channel_values).toEqual(expected);
    expect((read?.checkpoint.channel_values as { log: string[] }).log).toHaveLength(10);
  });
});

import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import {
  Annotation,
  DeltaChannel,
  StateGraph,
  messagesDeltaReducer,
  type Messages,
} from "@langchain/langgraph";
import { MemorySaver, type BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";
import { PostgresCheckpointer } from "../src/checkpoint/index.js";
import { attachPoolErrorHandler } from "../src/db/pool.js";
import { messageText } from "./payload.js";
import { median, percentile } from "./stats.js";
import { chatGraph, time } from "./turn.js";
import { FloorSaver, createFloorTable } from "./turn-floor.js";

/** p50 per side and the median of per-round ratios. */
export interface SideBySide {
  p50: Record<string, number>;
  /** Median over rounds of a/b for each named pair. */
  ratios: Record<string, number>;
}

/** Result of {@link benchInstances}. */
export interface InstancesBenchResult {
  /** Chat turns where every turn of a thread goes to the next of 3 checkpointers (own pools). */
  roundRobin: SideBySide;
  /**
   * The floors, measured in the same rounds on the same pools: a {@link FloorSaver} (MemorySaver
   * that makes one primary-key SELECT per read and commits one 0.4 KB INSERT per put, and, in
   * the DeltaChannel graph, per putWrites of `messages`) driven by LangGraph like any saver.
   * `ratio`/`deltaRatio` are floor/MemorySaver, `threadlineRatio`/`deltaThreadlineRatio`
   * threadline/floor; `selectMs`/`insertMs` the raw statements' p50 on the same pools.
   */
  floor: {
    selectMs: number;
    insertMs: number;
    ratio: number;
    deltaRatio: number;
    threadlineRatio: number;
    deltaThreadlineRatio: number;
  };
  /** A graph whose `messages` is `DeltaChannel(messagesDeltaReducer)`, three savers. */
  delta: SideBySide & {
    /** Statements sent by one `getDeltaChannelHistory` of a 20-turn thread's latest checkpoint. */
    historyStatements: { threadline: number; official: number };
    /** p50 ms of that call, and threadline/official. */
    historyMs: { threadline: number; official: number; ratio: number };
  };
}

const CONTENT = (i: number, role: string) => messageText(i, role);

/** The same chat graph with `messages` as a DeltaChannel (LangGraph's beta delta storage). */
export function deltaGraph(checkpointer: BaseCheckpointSaver) {
  const State = Annotation.Root({
    messages: new DeltaChannel<BaseMessage[], Messages>(messagesDeltaReducer),
  });
  return new StateGraph(State)
    .addNode("model", (state: typeof State.State) => {
      const turn = state.messages.filter((m) => m.getType() === "human").length;
      return { messages: [new AIMessage(CONTENT(turn, `turn ${turn} reply`))] };
    })
    .addEdge("__start__", "model")
    .addEdge("model", "__end__")
    .compile({ checkpointer });
}

export type Invoker = (threadId: string, turn: number) => Promise<unknown>;

/** `threads` conversations of 20 turns, the sides taking turns in rotating order. */
export async function sideBySide(
  sides: Record<string, Invoker>,
  threads: number,
  prefix: string,
  pairs: Array<[string, string]>,
): Promise<SideBySide> {
  const names = Object.keys(sides);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  let round = 0;
  for (let t = 0; t < threads; t++) {
    for (let turn = 1; turn <= 20; turn++, round++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round) % names.length]!;
        samples[name]!.push(await time(() => sides[name]!(`${prefix}${t}`, turn)));
      }
    }
  }
  const ratios: Record<string, number> = {};
  for (const [a, b] of pairs)
    ratios[`${a}/${b}`] = median(samples[a]!.map((x, i) => x / Math.max(1e-6, samples[b]![i]!)));
  return {
    p50: Object.fromEntries(names.map((n) => [n, percentile(samples[n]!, 50)])),
    ratios,
  };
}

/** Counts the statements every pg client sends. */
function statementCounter(): { readonly count: number; reset(): void; restore(): void } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let count = 0;
  proto.query = function (this: unknown, ...args: unknown[]) {
    count++;
    return original.apply(this, args);
  };
  return {
    get count() {
      return count;
    },
    reset: () => (count = 0),
    restore: () => (proto.query = original),
  };
}

/**
 * Figures across instances, all on one database:
 * - round robin: three PostgresCheckpointers, each with its own pool like three service
 *   instances behind a load balancer, each turn of a thread on the next one (so no instance
 *   ever holds the previous turn), against MemorySaver and a floor saver on the same pools;
 * - DeltaChannel: the chat graph with `messages: new DeltaChannel(messagesDeltaReducer)` on
 *   Threadline, the official PostgresSaver, MemorySaver and a floor saver, and how many
 *   statements one `getDeltaChannelHistory` costs on a 20-turn thread.
 */
export async function benchInstances(opts: {
  url: string;
  quick: boolean;
}): Promise<InstancesBenchResult> {
  const suffix = Math.random().toString(36).slice(2, 8);
  const schema = `bench_inst_${suffix}`;
  const officialSchema = `bench_inst_official_${suffix}`;
  const pools = Array.from({ length: 4 }, () =>
    attachPoolErrorHandler(new pg.Pool({ connectionString: opts.url, max: 4 })),
  );
  const threads = opts.quick ? 1 : 15;
  try {
    const instances = pools.slice(0, 3).map((p) => new PostgresCheckpointer(p, { schema }));
    await instances[0]!.setup();
    const official = new PostgresSaver(pools[3]!, undefined, { schema: officialSchema });
    await official.setup();
    const memory = new MemorySaver();
    const floorTable = await createFloorTable(pools[0]!, schema);
    // The round robin's floor saver reads and commits on the pool of the turn's instance.
    let rrPool = pools[0]!;
    const rrFloor = chatGraph(new FloorSaver(() => rrPool, floorTable));

    const input = (turn: number) => ({ messages: [new HumanMessage(CONTENT(turn, "user"))] });
    const cfg = (threadId: string) => ({ configurable: { thread_id: threadId } });
    const rr = instances.map(chatGraph);
    const memGraph = chatGraph(memory);
    const roundRobin = await sideBySide(
      {
        threadline: (t, turn) => rr[turn % 3]!.invoke(input(turn), cfg(`rr-${t}`)),
        memory: (t, turn) => memGraph.invoke(input(turn), cfg(`rr-${t}`)),
        floor: (t, turn) => {
          rrPool = pools[turn % 3]!;
          return rrFloor.invoke(input(turn), cfg(`rr-${t}`));
        },
      },
      threads,
      "",
      [
        ["threadline", "memory"],
        ["floor", "memory"],
        ["threadline", "floor"],
      ],
    );

    const dg = {
      threadline: deltaGraph(instances[0]!),
      official: deltaGraph(official),
      memory: deltaGraph(memory),
      floor: deltaGraph(new FloorSaver(() => pools[0]!, floorTable, new Set(["messages"]))),
    };
    const delta = await sideBySide(
      Object.fromEntries(
        Object.entries(dg).map(([name, g]) => [
          name,
          (t: string, turn: number) => g.invoke(input(turn), cfg(`delta-${t}`)),
        ]),
      ),
      threads,
      "",
      [
        ["threadline", "memory"],
        ["threadline", "official"],
        ["official", "memory"],
        ["floor", "memory"],
        ["threadline", "floor"],
      ],
    );

    // getDeltaChannelHistory of the latest checkpoint of a 20-turn thread, by a checkpointer
    // that did not write it (a fresh instance on the same pool): statements and time.
    const reader = new PostgresCheckpointer(pools[1]!, { schema, deltaCacheSize: 0 });
    const latest = async (saver: BaseCheckpointSaver) => {
      const tuple = await saver.getTuple(cfg("delta-0"));
      if (!tuple) throw new Error("delta thread missing");
      return tuple.config;
    };
    const history = (saver: BaseCheckpointSaver, config: Awaited<ReturnType<typeof latest>>) =>
      saver.getDeltaChannelHistory({ config, channels: ["messages"] });
    const configs = { threadline: await latest(reader), official: await latest(official) };
    const savers = { threadline: reader, official };
    const counter = statementCounter();
    const historyStatements = { threadline: 0, official: 0 };
    try {
      for (const name of ["threadline", "official"] as const) {
        counter.reset();
        await history(savers[name], configs[name]);
        historyStatements[name] = counter.count;
      }
    } finally {
      counter.restore();
    }
    const ms: Record<"threadline" | "official", number[]> = { threadline: [], official: [] };
    for (let r = 0; r < (opts.quick ? 10 : 60); r++) {
      for (const name of r % 2 === 0
        ? (["threadline", "official"] as const)
        : (["official", "threadline"] as const)) {
        ms[name].push(await time(() => history(savers[name], configs[name])));
      }
    }
    const historyMs = {
      threadline: percentile(ms.threadline, 50),
      official: percentile(ms.official, 50),
      ratio: median(ms.threadline.map((x, i) => x / Math.max(1e-6, ms.official[i]!))),
    };
    // The raw statements the floor savers are made of, same pools, same moment.
    const sel: number[] = [];
    const ins: number[] = [];
    for (let r = 0; r < (opts.quick ? 40 : 200); r++) {
      const pool = pools[r % 3]!;
      sel.push(
        await time(() => pool.query(`SELECT * FROM ${floorTable} WHERE id = $1`, [`k${r % 10}`])),
      );
      ins.push(
        await time(() =>
          pool.query(`INSERT INTO ${floorTable} VALUES ($1, $2)`, [`raw${r}`, "x".repeat(400)]),
        ),
      );
    }
    const floor = {
      selectMs: percentile(sel, 50),
      insertMs: percentile(ins, 50),
      ratio: roundRobin.ratios["floor/memory"]!,
      deltaRatio: delta.ratios["floor/memory"]!,
      threadlineRatio: roundRobin.ratios["threadline/floor"]!,
      deltaThreadlineRatio: delta.ratios["threadline/floor"]!,
    };
    return { roundRobin, floor, delta: { ...delta, historyStatements, historyMs } };
  } finally {
    for (const s of [schema, officialSchema])
      await pools[0]!.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => undefined);
    await Promise.all(pools.map((p) => p.end()));
  }
}

import { HumanMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  MemorySaver,
  type BaseCheckpointSaver,
  type Checkpoint,
  type CheckpointMetadata,
  type CheckpointTuple,
  type PendingWrite,
} from "@langchain/langgraph-checkpoint";
import pg from "pg";
import { PostgresCheckpointer } from "../src/checkpoint/postgres/saver.js";
import { attachPoolErrorHandler } from "../src/db/pool.js";
import { messageText } from "./payload.js";
import { median, percentile } from "./stats.js";
import { chatGraph, time } from "./turn.js";

/** Result of {@link benchTurnFloor}: p50 ms per saver and medians of per-round ratios. */
export interface TurnFloorResult {
  turns: number;
  p50: { threadline: number; memory: number; floor: number };
  ratios: { "threadline/memory": number; "floor/memory": number };
}

/**
 * The floor of a durable chat turn: MemorySaver, except that every getTuple (and every
 * getDeltaChannelHistory) first makes one primary-key SELECT round trip and every put first
 * commits one single-row INSERT of ~0.4 KB. Pending writes cost nothing (Threadline sends them
 * with the next put) unless they touch a channel in `commitWritesOf`: a DeltaChannel's writes
 * are its stored history, so they commit on their own. LangGraph drives it exactly as it drives
 * any saver, so whatever its own work overlaps (the puts of one invoke are chained, the steps
 * run meanwhile) is overlapped here too: what is left is the round trips and commits no saver
 * can avoid. `poolOf` is read at every call, so a benchmark can move it between instances.
 */
export class FloorSaver extends MemorySaver {
  private n = 0;
  constructor(
    private readonly poolOf: () => pg.Pool,
    private readonly table: string,
    private readonly commitWritesOf: ReadonlySet<string> = new Set(),
  ) {
    super();
  }
  private read(): Promise<unknown> {
    return this.poolOf().query(`SELECT * FROM ${this.table} WHERE id = $1`, [`k${this.n % 10}`]);
  }
  private commit(key: string): Promise<unknown> {
    return this.poolOf().query(`INSERT INTO ${this.table} VALUES ($1, $2)`, [
      `p${++this.n}-${key}`,
      FLOOR_ROW,
    ]);
  }
  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    await this.read();
    return super.getTuple(config);
  }
  override async getDeltaChannelHistory(
    ...args: Parameters<MemorySaver["getDeltaChannelHistory"]>
  ): ReturnType<MemorySaver["getDeltaChannelHistory"]> {
    await this.read();
    return super.getDeltaChannelHistory(...args);
  }
  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
  ): Promise<RunnableConfig> {
    await this.commit(checkpoint.id);
    return super.put(config, checkpoint, metadata);
  }
  override async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
  ): Promise<void> {
    if (writes.some(([channel]) => this.commitWritesOf.has(channel))) await this.commit(taskId);
    return super.putWrites(config, writes, taskId);
  }
}

/** Creates the floor savers' table (ten rows to read, k0..k9) in `schema`; returns its name. */
export async function createFloorTable(pool: pg.Pool, schema: string): Promise<string> {
  const table = `"${schema}".bench_floor`;
  await pool.query(`CREATE TABLE ${table} (id text PRIMARY KEY, v text)`);
  await pool.query(`INSERT INTO ${table} SELECT 'k' || g, $1 FROM generate_series(0, 9) g`, [
    FLOOR_ROW,
  ]);
  return table;
}

const FLOOR_ROW = "x".repeat(400);

/**
 * Chat turns (the benchmarks' one-node graph, threads of 20 turns) on PostgresCheckpointer,
 * MemorySaver and the {@link FloorSaver}, interleaved turn by turn in rotating order, one pool.
 */
export async function benchTurnFloor(opts: {
  url: string;
  quick: boolean;
}): Promise<TurnFloorResult> {
  const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: opts.url, max: 4 }));
  const schema = `bench_turnfloor_${Math.random().toString(36).slice(2, 8)}`;
  try {
    const threadline = new PostgresCheckpointer(pool, { schema });
    await threadline.setup();
    const table = await createFloorTable(pool, schema);
    const savers: Record<keyof TurnFloorResult["p50"], BaseCheckpointSaver> = {
      threadline,
      memory: new MemorySaver(),
      floor: new FloorSaver(() => pool, table),
    };
    const names = Object.keys(savers) as Array<keyof TurnFloorResult["p50"]>;
    const graphs = Object.fromEntries(names.map((s) => [s, chatGraph(savers[s])])) as Record<
      keyof TurnFloorResult["p50"],
      ReturnType<typeof chatGraph>
    >;
    const ms: Record<keyof TurnFloorResult["p50"], number[]> = {
      threadline: [],
      memory: [],
      floor: [],
    };
    const threads = opts.quick ? 3 : 15;
    let round = 0;
    for (let t = 0; t < threads; t++) {
      for (let turn = 1; turn <= 20; turn++, round++) {
        for (let i = 0; i < names.length; i++) {
          const s = names[(i + round) % names.length]!;
          ms[s].push(
            await time(() =>
              graphs[s].invoke(
                { messages: [new HumanMessage(messageText(turn, "user"))] },
                { configurable: { thread_id: `floor-${t}` } },
              ),
            ),
          );
        }
      }
    }
    const perRound = (a: number[], b: number[]) =>
      median(a.map((x, i) => x / Math.max(1e-6, b[i]!)));
    return {
      turns: round,
      p50: {
        threadline: percentile(ms.threadline, 50),
        memory: percentile(ms.memory, 50),
        floor: percentile(ms.floor, 50),
      },
      ratios: {
        "threadline/memory": perRound(ms.threadline, ms.memory),
        "floor/memory": perRound(ms.floor, ms.memory),
      },
    };
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
}

import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import {
  MemorySaver,
  emptyCheckpoint,
  uuid6,
  type BaseCheckpointSaver,
  type Checkpoint,
  type ChannelVersions,
} from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import type { RunnableConfig } from "@langchain/core/runnables";
import pg from "pg";
import { PostgresCheckpointer } from "../src/checkpoint/postgres/saver.js";
import { attachPoolErrorHandler } from "../src/db/pool.js";
import { messageText } from "./payload.js";
import { chatGraph, time } from "./turn.js";
import { percentile, median, type Sample } from "./stats.js";

export type SaverName = "official" | "threadline" | "memory";
export const SAVERS: SaverName[] = ["official", "threadline", "memory"];

export interface CheckpointBenchOptions {
  url: string;
  quick: boolean;
  log: (line: string) => void;
}

export interface OperationResult {
  operation: string;
  /** p50/p99 in ms per saver (or per floor query). */
  p50: Partial<Record<string, number>>;
  p99: Partial<Record<string, number>>;
  /** Median of per-round ratios threadline/official and threadline/memory. */
  vsOfficial?: number;
  vsMemory?: number;
  officialVsMemory?: number;
  /** Median of per-round ratios threadline/raw floor, where the floor ran in the same rounds. */
  vsFloor?: number;
}

export interface CheckpointBenchResult {
  operations: OperationResult[];
  throughput: Record<SaverName, number> & { ratio: number };
  statementsPerTurn: Record<"official" | "threadline", number>;
  storage: {
    official: { bytes: number; turn1: number; turn20: number };
    threadline: { bytes: number; turn1: number; turn20: number };
    ratio: number;
    growth: number;
  };
  floor: Record<string, { p50: number; p99: number }>;
  /**
   * The write-heavy figures again with `synchronous_commit = off` for both Postgres savers: what
   * they cost without the WAL flush each durable commit waits for (on this machine's disk, most
   * of a single-row INSERT). Informational; the targets use durable commits.
   */
  withoutFlush: OperationResult[];
}

const CONTENT = (i: number, role: string) => messageText(i, role);
/** The raw floor's row payload: with its key, a ~0.4 KB row. */
const FLOOR_ROW = "x".repeat(400);
/** The name of a raw `pg` floor that takes its turn in an operation's rounds beside the savers. */
export const FLOOR_IN_ROUNDS = "raw INSERT";

/** A LangGraph-like checkpoint sequence: messages grow by a turn (two messages) per checkpoint. */
class ThreadScript {
  readonly messages: BaseMessage[] = [];
  private version = 0;
  private step = -1;
  parent: string | undefined;
  constructor(readonly threadId: string) {}

  next(): {
    config: RunnableConfig;
    checkpoint: Checkpoint;
    newVersions: ChannelVersions;
    metadata: Record<string, unknown>;
  } {
    // One checkpoint per turn of two messages, as in the issue's payload.
    const i = this.messages.length;
    this.messages.push(
      new HumanMessage({ content: CONTENT(i, "human"), id: `h-${i}` }),
      new AIMessage({ content: CONTENT(i + 1, "ai"), id: `a-${i + 1}` }),
    );
    this.version += 1;
    this.step += 1;
    const cp = emptyCheckpoint();
    cp.id = uuid6(-1);
    cp.channel_values = {
      messages: this.messages.slice(),
      "branch:to:model": null,
      __start__: { messages: [] },
      step_counter: this.step,
    };
    cp.channel_versions = {
      messages: this.version,
      "branch:to:model": this.version,
      __start__: this.version,
      step_counter: this.version,
    };
    cp.versions_seen = { model: { "branch:to:model": this.version - 1 }, __input__: {} };
    const config: RunnableConfig = {
      configurable: {
        thread_id: this.threadId,
        checkpoint_ns: "",
        ...(this.parent ? { checkpoint_id: this.parent } : {}),
      },
    };
    this.parent = cp.id;
    return {
      config,
      checkpoint: cp,
      newVersions: { ...cp.channel_versions },
      metadata: { source: "loop", step: this.step, parents: {} },
    };
  }
}

async function fill(
  saver: BaseCheckpointSaver,
  threadId: string,
  checkpoints: number,
): Promise<string[]> {
  const script = new ThreadScript(threadId);
  const ids: string[] = [];
  for (let i = 0; i < checkpoints; i++) {
    const { config, checkpoint, newVersions, metadata } = script.next();
    await saver.put(config, checkpoint, metadata as never, newVersions);
    ids.push(checkpoint.id);
  }
  return ids;
}

/**
 * One putWrites of the benchmark for round r: a task's new message and a branch marker, on the
 * checkpoints of `threadId` in turn.
 */
function putWritesOp(
  savers: Record<SaverName, BaseCheckpointSaver>,
  threadId: string,
  ids: Record<string, string[]>,
  prefix: string,
) {
  return (s: SaverName, r: number) =>
    savers[s].putWrites(
      { configurable: { thread_id: threadId, checkpoint_ns: "", checkpoint_id: ids[s]![r % 20]! } },
      [
        ["messages", [new AIMessage({ content: CONTENT(r, "w"), id: `${prefix}w-${r}` })]],
        ["branch:to:model", null],
      ],
      `${prefix}task-${r}`,
    );
}

/** `threads` conversations of 20 `invoke()` turns, the savers taking turns in rotating order. */
async function chatRounds(
  savers: Record<SaverName, BaseCheckpointSaver>,
  threads: number,
  threadPrefix: string,
): Promise<Record<string, Sample[]>> {
  const graphs = Object.fromEntries(SAVERS.map((s) => [s, chatGraph(savers[s])])) as Record<
    SaverName,
    ReturnType<typeof chatGraph>
  >;
  const samples: Record<string, Sample[]> = { official: [], threadline: [], memory: [] };
  let round = 0;
  for (let t = 0; t < threads; t++) {
    for (let turn = 1; turn <= 20; turn++, round++) {
      const order = SAVERS.map((_, i) => SAVERS[(i + round) % SAVERS.length]!);
      for (const s of order) {
        const ms = await time(() =>
          graphs[s].invoke(
            { messages: [new HumanMessage(CONTENT(turn, "user"))] },
            { configurable: { thread_id: `${threadPrefix}${t}` } },
          ),
        );
        samples[s]!.push({ round, ms });
      }
    }
  }
  return samples;
}

/** Interleaves savers in rounds; returns samples per saver. */
async function rounds<N extends string>(
  n: number,
  savers: readonly N[],
  op: (saver: N, round: number) => Promise<unknown>,
): Promise<Record<string, Sample[]>> {
  const samples: Record<string, Sample[]> = {};
  for (const s of savers) samples[s] = [];
  for (let r = 0; r < n; r++) {
    // Rotate the order so no saver always runs first (warm caches, autovacuum, ...).
    const order = savers.map((_, i) => savers[(i + r) % savers.length]!);
    for (const s of order) samples[s]!.push({ round: r, ms: await time(() => op(s, r)) });
  }
  return samples;
}

function summarize(operation: string, samples: Record<string, Sample[]>): OperationResult {
  const result: OperationResult = { operation, p50: {}, p99: {} };
  for (const [name, list] of Object.entries(samples)) {
    const ms = list.map((s) => s.ms);
    result.p50[name] = percentile(ms, 50);
    result.p99[name] = percentile(ms, 99);
  }
  const ratio = (a: string, b: string) => {
    const xs = samples[a] ?? [];
    const ys = samples[b] ?? [];
    if (xs.length === 0 || ys.length === 0) return undefined;
    return median(xs.map((x, i) => x.ms / Math.max(1e-6, ys[i]!.ms)));
  };
  const vo = ratio("threadline", "official");
  const vm = ratio("threadline", "memory");
  const om = ratio("official", "memory");
  if (vo !== undefined) result.vsOfficial = vo;
  if (vm !== undefined) result.vsMemory = vm;
  if (om !== undefined) result.officialVsMemory = om;
  const vf = ratio("threadline", FLOOR_IN_ROUNDS);
  if (vf !== undefined) result.vsFloor = vf;
  return result;
}

/** Counts the statements every pg client sends, to report statements per chat turn. */
function countStatements(): { reset(): void; readonly count: number; restore(): void } {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let count = 0;
  proto.query = function (this: unknown, ...args: unknown[]) {
    count++;
    return original.apply(this, args);
  };
  return {
    reset: () => (count = 0),
    get count() {
      return count;
    },
    restore: () => {
      proto.query = original;
    },
  };
}

const COLUMNS: Record<string, string[]> = {
  checkpoints: [
    "thread_id",
    "checkpoint_ns",
    "checkpoint_id",
    "parent_checkpoint_id",
    "type",
    "checkpoint",
    "metadata",
  ],
  checkpoint_blobs: ["thread_id", "checkpoint_ns", "channel", "version", "type", "blob"],
  checkpoint_writes: [
    "thread_id",
    "checkpoint_ns",
    "checkpoint_id",
    "task_id",
    "idx",
    "channel",
    "type",
    "blob",
  ],
};

/**
 * Bytes a row occupies as stored: the 24-byte tuple header plus each column as stored (compressed
 * where Postgres compressed it). `pg_column_size(t.*)` would flatten and decompress the row.
 * Threadline's extra columns are counted too, when present.
 */
export function rowSize(table: string, extra: string[] = []): string {
  const cols = [...(COLUMNS[table] ?? []), ...extra];
  return `24 + ${cols.map((c) => `coalesce(pg_column_size(${c}), 0)`).join(" + ")}`;
}

async function threadBytes(
  pool: pg.Pool,
  schema: string,
  threadId: string,
  extra: { blobs: string[]; writes: string[] },
): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT (SELECT coalesce(sum(${rowSize("checkpoints")}), 0) FROM "${schema}".checkpoints c WHERE thread_id = $1)
          + (SELECT coalesce(sum(${rowSize("checkpoint_blobs", extra.blobs)}), 0) FROM "${schema}".checkpoint_blobs b WHERE thread_id = $1)
          + (SELECT coalesce(sum(${rowSize("checkpoint_writes", extra.writes)}), 0) FROM "${schema}".checkpoint_writes w WHERE thread_id = $1) AS n`,
    [threadId],
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * putWrites and the chat turn with asynchronous commit on both Postgres savers (same schemas,
 * fresh threads): separates the cost of each design from the disk's flush latency.
 */
async function measureWithoutFlush(
  opts: CheckpointBenchOptions,
  officialSchema: string,
  oursSchema: string,
  memory: BaseCheckpointSaver,
  R: number,
): Promise<OperationResult[]> {
  const pool = attachPoolErrorHandler(
    new pg.Pool({ connectionString: opts.url, max: 10, options: "-c synchronous_commit=off" }),
  );
  try {
    const savers: Record<SaverName, BaseCheckpointSaver> = {
      official: new PostgresSaver(pool, undefined, { schema: officialSchema }),
      threadline: new PostgresCheckpointer(pool, { schema: oursSchema }),
      memory,
    };
    const ids: Record<string, string[]> = {};
    for (const s of SAVERS) ids[s] = await fill(savers[s], "noflush-20", 20);
    const results: OperationResult[] = [];
    results.push(
      summarize(
        "putWrites (2 writes), no flush",
        await rounds(R, SAVERS, putWritesOp(savers, "noflush-20", ids, "nf-")),
      ),
    );
    const samples = await chatRounds(savers, opts.quick ? 3 : 15, "noflush-chat-");
    results.push(summarize("chat turn (invoke, 20 turns), no flush", samples));
    return results;
  } finally {
    await pool.end();
  }
}

/** Runs the checkpoint benchmark: official PostgresSaver vs PostgresCheckpointer vs MemorySaver. */
export async function benchCheckpoints(
  opts: CheckpointBenchOptions,
): Promise<CheckpointBenchResult> {
  const { quick, log } = opts;
  const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: opts.url, max: 10 }));
  const suffix = Math.random().toString(36).slice(2, 8);
  const officialSchema = `bench_official_${suffix}`;
  const oursSchema = `bench_threadline_${suffix}`;
  const official = new PostgresSaver(pool, undefined, { schema: officialSchema });
  const ours = new PostgresCheckpointer(pool, { schema: oursSchema });
  const memory = new MemorySaver();
  const savers: Record<SaverName, BaseCheckpointSaver> = { official, threadline: ours, memory };
  const R = quick ? 40 : 300;
  const operations: OperationResult[] = [];
  try {
    await official.setup();
    await ours.setup();

    // --- raw pg floor
    await pool.query(`CREATE TABLE "${oursSchema}".bench_floor (id text PRIMARY KEY, v text)`);
    const floorOps: Record<string, (r: number) => Promise<unknown>> = {
      "SELECT 1": () => pool.query("SELECT 1"),
      // A ~0.4 KB row, the size of one pending write (issue 17's putWrites floor).
      "INSERT (1 row, 0.4 KB)": (r) =>
        pool.query(`INSERT INTO "${oursSchema}".bench_floor VALUES ($1, $2)`, [`i${r}`, FLOOR_ROW]),
      "BEGIN+INSERT+COMMIT": async (r) => {
        const c = await pool.connect();
        try {
          await c.query("BEGIN");
          await c.query(`INSERT INTO "${oursSchema}".bench_floor VALUES ($1, $2)`, [
            `t${r}`,
            FLOOR_ROW,
          ]);
          await c.query("COMMIT");
        } finally {
          c.release();
        }
      },
      "SELECT by primary key": (r) =>
        pool.query(`SELECT * FROM "${oursSchema}".bench_floor WHERE id = $1`, [`i${r % 10}`]),
    };
    const floor: CheckpointBenchResult["floor"] = {};
    for (const [name, op] of Object.entries(floorOps)) {
      const ms: number[] = [];
      for (let r = 0; r < R; r++) ms.push(await time(() => op(r)));
      floor[name] = { p50: percentile(ms, 50), p99: percentile(ms, 99) };
    }
    log("floor measured");

    // --- put: each round appends the next turn of a 20-turn (40-message) thread
    const scripts: Record<string, ThreadScript> = {};
    const putOp = async (s: SaverName, r: number) => {
      const key = `${s}-${Math.floor(r / 20)}`;
      const script = (scripts[key] ??= new ThreadScript(`put-${Math.floor(r / 20)}`));
      const { config, checkpoint, newVersions, metadata } = script.next();
      await savers[s].put(config, checkpoint, metadata as never, newVersions);
    };
    for (let w = 0; w < 5; w++) for (const s of SAVERS) await putOp(s, 100_000 + w); // warm up
    operations.push(summarize("put", await rounds(R, SAVERS, putOp)));
    log("put measured");

    // --- threads to read: 20 and 200 checkpoints
    const ids20: Record<string, string[]> = {};
    const ids200: Record<string, string[]> = {};
    for (const s of SAVERS) {
      ids20[s] = await fill(savers[s], "read-20", 20);
      ids200[s] = await fill(savers[s], "read-200", 200);
    }
    log("read threads built");

    // The raw 0.4 KB INSERT takes its turn in the same rounds, so the putWrites/floor ratio is
    // per round (same moment, same disk) rather than two p50s from different minutes.
    const writes = putWritesOp(savers, "read-20", ids20, "");
    // The floor table's INSERT, on keys past those the floor table above used.
    const insertFloor = (r: number) => floorOps["INSERT (1 row, 0.4 KB)"]!(R + r);
    operations.push(
      summarize(
        "putWrites (2 writes)",
        await rounds(R, [...SAVERS, FLOOR_IN_ROUNDS] as const, (s, r) =>
          s === FLOOR_IN_ROUNDS ? insertFloor(r) : writes(s, r),
        ),
      ),
    );
    operations.push(
      summarize(
        "getTuple latest (40 messages)",
        await rounds(R, SAVERS, (s) =>
          savers[s].getTuple({ configurable: { thread_id: "read-20", checkpoint_ns: "" } }),
        ),
      ),
    );
    operations.push(
      summarize(
        "getTuple by id",
        await rounds(R, SAVERS, (s, r) =>
          savers[s].getTuple({
            configurable: {
              thread_id: "read-20",
              checkpoint_ns: "",
              checkpoint_id: ids20[s]![10 + (r % 10)]!,
            },
          }),
        ),
      ),
    );
    // The same reads by a process that holds nothing of the thread (another service instance,
    // or after a restart): every blob and delta chain is fetched and decoded.
    const cold = new PostgresCheckpointer(pool, { schema: oursSchema, deltaCacheSize: 0 });
    const coldSavers: Record<SaverName, BaseCheckpointSaver> = { ...savers, threadline: cold };
    operations.push(
      summarize(
        "getTuple latest, cold process",
        await rounds(R, SAVERS, (s) =>
          coldSavers[s].getTuple({ configurable: { thread_id: "read-20", checkpoint_ns: "" } }),
        ),
      ),
    );
    operations.push(
      summarize(
        "getTuple by id, cold process",
        await rounds(R, SAVERS, (s, r) =>
          coldSavers[s].getTuple({
            configurable: {
              thread_id: "read-20",
              checkpoint_ns: "",
              checkpoint_id: ids20[s]![10 + (r % 10)]!,
            },
          }),
        ),
      ),
    );
    const drain = async (s: SaverName, threadId: string, limit?: number) => {
      let n = 0;
      for await (const _ of savers[s].list(
        { configurable: { thread_id: threadId, checkpoint_ns: "" } },
        limit ? { limit } : {},
      ))
        n++;
      return n;
    };
    operations.push(
      summarize(
        "list limit 10, 20-checkpoint thread",
        await rounds(R, SAVERS, (s) => drain(s, "read-20", 10)),
      ),
    );
    operations.push(
      summarize(
        "list limit 10, 200-checkpoint thread",
        await rounds(Math.max(10, R / 4), SAVERS, (s) => drain(s, "read-200", 10)),
      ),
    );
    log("reads measured");

    // --- put throughput: 16 concurrent clients on a pool of 10
    const throughput = { official: 0, threadline: 0, memory: 0, ratio: 0 };
    const seconds = quick ? 1.5 : 5;
    for (const s of SAVERS) {
      let ops = 0;
      const stopAt = Date.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: 16 }, async (_, c) => {
          let script = new ThreadScript(`tp-${s}-${c}`);
          let n = 0;
          while (Date.now() < stopAt) {
            // Threads of 20 turns, like the put rounds above.
            if (++n % 20 === 0) script = new ThreadScript(`tp-${s}-${c}-${n}`);
            const { config, checkpoint, newVersions, metadata } = script.next();
            await savers[s].put(config, checkpoint, metadata as never, newVersions);
            ops++;
          }
        }),
      );
      throughput[s] = ops / seconds;
    }
    throughput.ratio = throughput.threadline / throughput.official;
    log("throughput measured");

    // --- chat turns: StateGraph + MessagesAnnotation, invoke() per turn
    const chatSamples = await chatRounds(savers, quick ? 6 : 50, "chat-");
    operations.push(summarize("chat turn (invoke, 20 turns)", chatSamples));
    log("chat measured");

    // --- statements per chat turn and storage growth, on fresh threads
    const graphs = Object.fromEntries(SAVERS.map((s) => [s, chatGraph(savers[s])])) as Record<
      SaverName,
      ReturnType<typeof chatGraph>
    >;
    const counter = countStatements();
    const statementsPerTurn = { official: 0, threadline: 0 };
    const storage = {
      official: { bytes: 0, turn1: 0, turn20: 0 },
      threadline: { bytes: 0, turn1: 0, turn20: 0 },
      ratio: 0,
      growth: 0,
    };
    try {
      for (const s of ["official", "threadline"] as const) {
        const schema = s === "official" ? officialSchema : oursSchema;
        let before = 0;
        let statements = 0;
        for (let turn = 1; turn <= 20; turn++) {
          counter.reset();
          await graphs[s].invoke(
            { messages: [new HumanMessage(CONTENT(turn, "user"))] },
            { configurable: { thread_id: `storage-${s}` } },
          );
          statements += counter.count;
          const bytes = await threadBytes(
            pool,
            schema,
            `storage-${s}`,
            s === "official"
              ? { blobs: [], writes: [] }
              : { blobs: ["delta_base", "delta_root"], writes: ["task_path"] },
          );
          if (turn === 1) storage[s].turn1 = bytes - before;
          if (turn === 20) storage[s].turn20 = bytes - before;
          before = bytes;
        }
        statementsPerTurn[s] = statements / 20;
        storage[s].bytes = before;
      }
    } finally {
      counter.restore();
    }
    storage.ratio = storage.threadline.bytes / storage.official.bytes;
    storage.growth = storage.threadline.turn20 / storage.threadline.turn1;
    log("statements and storage measured");

    const withoutFlush = await measureWithoutFlush(opts, officialSchema, oursSchema, memory, R);
    log("commit-flush share measured");
    return { operations, throughput, statementsPerTurn, storage, floor, withoutFlush };
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${officialSchema}" CASCADE`).catch(() => undefined);
    await pool.query(`DROP SCHEMA IF EXISTS "${oursSchema}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
}

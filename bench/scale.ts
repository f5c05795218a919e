import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import { emptyCheckpoint, uuid6, type Checkpoint } from "@langchain/langgraph-checkpoint";
import pg from "pg";
import { PostgresCheckpointer } from "../src/checkpoint/postgres/saver.js";
import { quoteSchema } from "../src/db/identifier.js";
import { attachPoolErrorHandler } from "../src/db/pool.js";
import { messageText } from "./payload.js";
import { median, percentile } from "./stats.js";
import { time } from "./turn.js";

export interface ScaleBenchOptions {
  url: string;
  /** The big set holds 100k checkpoints in 10k threads instead of 1M in 100k. */
  quick: boolean;
  log: (line: string) => void;
}

export type ScaleOperation =
  | "getTuple latest, cold"
  | "put"
  | "list limit 10, cold"
  | "raw floor: latest checkpoint row"
  | "raw floor: the rows getTuple latest reads"
  | "raw floor: every row of the thread"
  | "raw floor: insert a checkpoint and a blob row";
export const SCALE_OPERATIONS: ScaleOperation[] = [
  "getTuple latest, cold",
  "put",
  "list limit 10, cold",
  "raw floor: latest checkpoint row",
  "raw floor: the rows getTuple latest reads",
  "raw floor: every row of the thread",
  "raw floor: insert a checkpoint and a blob row",
];
/** The raw-pg reads of the same rows, no saver: what the table size alone costs. */
export const isFloor = (op: ScaleOperation) => op.startsWith("raw floor");

/** Result of {@link benchScale}; latencies in milliseconds. */
export interface ScaleBenchResult {
  checkpointsPerThread: number;
  small: { threads: number; checkpoints: number };
  big: { threads: number; checkpoints: number; bytes: number };
  /** Building the big set: the copy (INSERT ... SELECT), VACUUM ANALYZE, both. */
  buildMs: { copy: number; vacuum: number; total: number };
  rounds: number;
  operations: Array<{
    operation: ScaleOperation;
    p50: { small: number; big: number };
    p99: { small: number; big: number };
    /** p50 at the big size / p50 at the small size (the target). */
    ratio: number;
    /** Median of the per-round ratios big / small (informational). */
    roundRatio: number;
  }>;
}

const CHECKPOINTS_PER_THREAD = 10;
/** Tables a PostgresCheckpointer writes (migrations 0001-0003), copied row for row. */
const TABLES = ["checkpoint_threads", "checkpoints", "checkpoint_blobs", "checkpoint_writes"];
const TEMPLATE = "t-0";
const FLOOR_ROW = "x".repeat(400);

/**
 * Is the saver flat at scale? Two schemas hold the same conversation shape: 1k checkpoints in
 * 100 threads and 1M checkpoints in 100k threads (100k in 10k with `quick`). Each is built from
 * one template thread written by the real PostgresCheckpointer (10 turns, each a put and a
 * putWrites of 2 writes), multiplied set-based with INSERT ... SELECT over generate_series, row
 * for row in every table the saver writes (checkpoints, blobs with their delta links, writes,
 * the activity rows), then VACUUM ANALYZE. Rows are laid out as a live database grows: all
 * threads' first checkpoint, then all threads' second, and so on (chunk by chunk).
 *
 * Then, in interleaved rounds on random threads (the two sizes alternate who goes first): the
 * latest checkpoint read by a checkpointer that did not write the thread (no delta cache), a put
 * that continues the thread's latest checkpoint (the writer reads it first, untimed, as a turn
 * does), and list(limit 10) by the cold reader.
 */
export async function benchScale(opts: ScaleBenchOptions): Promise<ScaleBenchResult> {
  const { log } = opts;
  const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: opts.url, max: 6 }));
  const suffix = Math.random().toString(36).slice(2, 8);
  const schemas = { small: `bench_scale_small_${suffix}`, big: `bench_scale_big_${suffix}` };
  const sizes = {
    small: { threads: 100, checkpoints: 100 * CHECKPOINTS_PER_THREAD },
    big: opts.quick
      ? { threads: 10_000, checkpoints: 10_000 * CHECKPOINTS_PER_THREAD }
      : { threads: 100_000, checkpoints: 100_000 * CHECKPOINTS_PER_THREAD },
  };
  try {
    let copyMs = 0;
    let vacuumMs = 0;
    for (const size of ["small", "big"] as const) {
      const schema = schemas[size];
      const writer = new PostgresCheckpointer(pool, { schema });
      await writer.setup();
      await writeTemplate(writer);
      const t0 = performance.now();
      await multiply(pool, schema, sizes[size].threads);
      const t1 = performance.now();
      const q = quoteSchema(schema);
      await pool.query(`VACUUM ANALYZE ${TABLES.map((t) => `${q}.${t}`).join(", ")}`);
      const t2 = performance.now();
      if (size === "big") {
        copyMs = t1 - t0;
        vacuumMs = t2 - t1;
      }
      const { rows } = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${q}.checkpoints`,
      );
      log(
        `scale: ${size} set, ${rows[0]?.n} checkpoints in ${sizes[size].threads} threads: copy ${Math.round(t1 - t0)} ms, VACUUM ANALYZE ${Math.round(t2 - t1)} ms`,
      );
    }
    const { rows: bytesRows } = await pool.query<{ bytes: string }>(
      `SELECT sum(pg_total_relation_size(format('%I.%I', $1::text, t)::regclass))::bigint AS bytes
       FROM unnest($2::text[]) t`,
      [schemas.big, TABLES],
    );

    const savers = {
      small: {
        writer: new PostgresCheckpointer(pool, { schema: schemas.small }),
        reader: new PostgresCheckpointer(pool, { schema: schemas.small, deltaCacheSize: 0 }),
      },
      big: {
        writer: new PostgresCheckpointer(pool, { schema: schemas.big }),
        reader: new PostgresCheckpointer(pool, { schema: schemas.big, deltaCacheSize: 0 }),
      },
    };
    const pick = (size: "small" | "big") => `t-${Math.floor(Math.random() * sizes[size].threads)}`;
    const latest = (threadId: string): RunnableConfig => ({
      configurable: { thread_id: threadId, checkpoint_ns: "" },
    });
    const ops: Record<ScaleOperation, (size: "small" | "big") => Promise<number>> = {
      "getTuple latest, cold": (size) =>
        time(() => savers[size].reader.getTuple(latest(pick(size)))),
      "list limit 10, cold": (size) =>
        time(async () => {
          let n = 0;
          for await (const _ of savers[size].reader.list(latest(pick(size)), { limit: 10 })) n++;
          return n;
        }),
      // The floors read the same rows with plain SQL: the newest checkpoint row, and every row of
      // the thread in all three tables (all a list of 10 on a 10-checkpoint thread must read).
      "raw floor: latest checkpoint row": (size) =>
        time(() =>
          pool.query(
            `SELECT checkpoint FROM ${quoteSchema(schemas[size])}.checkpoints
             WHERE thread_id = $1 AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1`,
            [pick(size)],
          ),
        ),
      // The newest checkpoint, the blob of each of its channel versions, every row of their delta
      // chains (through delta_root) and the full value each starts from, and its writes: the rows
      // getTuple fetches, nothing decoded.
      "raw floor: the rows getTuple latest reads": (size) => {
        const q = quoteSchema(schemas[size]);
        return time(() =>
          pool.query(
            `WITH cp AS (
               SELECT checkpoint_id, checkpoint FROM ${q}.checkpoints
               WHERE thread_id = $1 AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1
             ), heads AS (
               SELECT b.* FROM cp, jsonb_each_text(cp.checkpoint -> 'channel_versions') v,
               LATERAL (SELECT x.channel, x.delta_root, x.blob FROM ${q}.checkpoint_blobs x
                        WHERE x.thread_id = $1 AND x.checkpoint_ns = '' AND x.channel = v.key
                          AND x.version = v.value LIMIT 1) b
             )
             SELECT checkpoint::text AS t FROM cp
             UNION ALL SELECT encode(h.blob, 'base64') FROM heads h WHERE h.delta_root IS NULL
             UNION ALL SELECT encode(x.blob, 'base64') FROM heads h
               JOIN ${q}.checkpoint_blobs x ON x.thread_id = $1 AND x.checkpoint_ns = ''
                AND x.channel = h.channel AND x.delta_root = h.delta_root
             UNION ALL SELECT encode(x.blob, 'base64') FROM heads h
               JOIN ${q}.checkpoint_blobs x ON x.thread_id = $1 AND x.checkpoint_ns = ''
                AND x.channel = h.channel AND x.version = h.delta_root
             UNION ALL SELECT encode(w.blob, 'base64') FROM cp
               JOIN ${q}.checkpoint_writes w ON w.thread_id = $1 AND w.checkpoint_ns = ''
                AND w.checkpoint_id = cp.checkpoint_id`,
            [pick(size)],
          ),
        );
      },
      "raw floor: every row of the thread": (size) => {
        const q = quoteSchema(schemas[size]);
        return time(() =>
          pool.query(
            `SELECT checkpoint::text AS t FROM ${q}.checkpoints WHERE thread_id = $1 AND checkpoint_ns = ''
             UNION ALL SELECT encode(blob, 'base64') FROM ${q}.checkpoint_blobs WHERE thread_id = $1 AND checkpoint_ns = ''
             UNION ALL SELECT encode(blob, 'base64') FROM ${q}.checkpoint_writes WHERE thread_id = $1 AND checkpoint_ns = ''`,
            [pick(size)],
          ),
        );
      },
      // And what any put costs: one checkpoint row and one ~0.4 KB blob row into a random
      // thread of the set, one statement, one commit (the activity trigger fires as for a put),
      // in a namespace of their own so the saver's reads never see them.
      "raw floor: insert a checkpoint and a blob row": (size) => {
        const q = quoteSchema(schemas[size]);
        const id = uuid6(-1);
        return time(() =>
          pool.query(
            `WITH b AS (
               INSERT INTO ${q}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
               VALUES ($1, 'floor', 'floor', $2, 'json', convert_to($3, 'UTF8'))
             )
             INSERT INTO ${q}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)
             VALUES ($1, 'floor', $2, jsonb_build_object('id', $2::text), '{}'::jsonb)`,
            [pick(size), id, FLOOR_ROW],
          ),
        );
      },
      put: async (size) => {
        const { writer } = savers[size];
        const tuple = await writer.getTuple(latest(pick(size)));
        if (!tuple) throw new Error("scale bench: a thread of the set has no checkpoint");
        const next = continueCheckpoint(tuple.checkpoint, writer);
        return time(() =>
          writer.put(tuple.config, next.checkpoint, next.metadata as never, next.newVersions),
        );
      },
    };

    const R = opts.quick ? 120 : 400;
    const warmup = 20;
    const samples = Object.fromEntries(
      SCALE_OPERATIONS.map((op) => [op, { small: [] as number[], big: [] as number[] }]),
    ) as Record<ScaleOperation, { small: number[]; big: number[] }>;
    for (let r = 0; r < warmup + R; r++) {
      const order = r % 2 === 0 ? (["small", "big"] as const) : (["big", "small"] as const);
      for (const op of SCALE_OPERATIONS) {
        for (const size of order) {
          const ms = await ops[op](size);
          if (r >= warmup) samples[op][size].push(ms);
        }
      }
    }
    log(`scale: ${R} rounds measured`);

    return {
      checkpointsPerThread: CHECKPOINTS_PER_THREAD,
      small: sizes.small,
      big: { ...sizes.big, bytes: Number(bytesRows[0]?.bytes ?? 0) },
      buildMs: {
        copy: Math.round(copyMs),
        vacuum: Math.round(vacuumMs),
        total: Math.round(copyMs + vacuumMs),
      },
      rounds: R,
      operations: SCALE_OPERATIONS.map((operation) => {
        const s = samples[operation];
        const p50 = { small: percentile(s.small, 50), big: percentile(s.big, 50) };
        return {
          operation,
          p50,
          p99: { small: percentile(s.small, 99), big: percentile(s.big, 99) },
          ratio: p50.big / p50.small,
          roundRatio: median(s.big.map((b, i) => b / Math.max(1e-6, s.small[i]!))),
        };
      }),
    };
  } finally {
    for (const schema of Object.values(schemas))
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
}

/** The template thread: 10 turns of a chat, each a put and the pending writes of its task. */
async function writeTemplate(saver: PostgresCheckpointer): Promise<void> {
  let config: RunnableConfig = { configurable: { thread_id: TEMPLATE, checkpoint_ns: "" } };
  let checkpoint: Checkpoint = emptyCheckpoint();
  checkpoint.channel_values = { messages: [] };
  for (let i = 0; i < CHECKPOINTS_PER_THREAD; i++) {
    const next = continueCheckpoint(checkpoint, saver);
    config = await saver.put(config, next.checkpoint, next.metadata as never, next.newVersions);
    checkpoint = next.checkpoint;
    if (i < CHECKPOINTS_PER_THREAD - 1) {
      const turn = (checkpoint.channel_values.messages as BaseMessage[]).length;
      await saver.putWrites(
        config,
        [
          ["messages", [new AIMessage({ content: messageText(turn, "w"), id: `w-${turn}` })]],
          ["branch:to:model", null],
        ],
        `task-${turn}`,
      );
    }
  }
}

/** The checkpoint after `prev`, as a chat turn makes it: two more messages, versions bumped. */
function continueCheckpoint(prev: Checkpoint, saver: PostgresCheckpointer) {
  const messages = [...((prev.channel_values.messages as BaseMessage[] | undefined) ?? [])];
  const i = messages.length;
  messages.push(
    new HumanMessage({ content: messageText(i, "human"), id: `h-${i}` }),
    new AIMessage({ content: messageText(i + 1, "ai"), id: `a-${i + 1}` }),
  );
  const step = Number((prev.channel_values.step_counter as number | undefined) ?? -1) + 1;
  const checkpoint = emptyCheckpoint();
  checkpoint.id = uuid6(-1);
  checkpoint.channel_values = {
    messages,
    "branch:to:model": null,
    __start__: { messages: [] },
    step_counter: step,
  };
  const bump = (channel: string) =>
    saver.getNextVersion(prev.channel_versions[channel] as number | undefined);
  checkpoint.channel_versions = {
    messages: bump("messages"),
    "branch:to:model": bump("branch:to:model"),
    __start__: bump("__start__"),
    step_counter: bump("step_counter"),
  };
  checkpoint.versions_seen = {
    model: { "branch:to:model": prev.channel_versions["branch:to:model"] ?? 0 },
    __input__: {},
  };
  return {
    checkpoint,
    newVersions: { ...checkpoint.channel_versions },
    metadata: { source: "loop", step, parents: {} },
  };
}

/**
 * Copies every row of the template thread to threads t-1 .. t-(threads-1), table by table, in
 * chunks of threads. The activity triggers are off for the copy (the activity rows are copied
 * like the rest, with the time of the copy), so each row costs an insert and nothing more.
 */
async function multiply(pool: pg.Pool, schema: string, threads: number): Promise<void> {
  const q = quoteSchema(schema);
  const chunk = 10_000;
  for (const table of TABLES) {
    const { rows } = await pool.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      [schema, table],
    );
    const columns = rows.map((r) => r.column_name);
    const list = columns.map((c) => pg.escapeIdentifier(c)).join(", ");
    const values = columns
      .map((c) =>
        c === "thread_id"
          ? "'t-' || g"
          : c === "last_activity" || c === "created_at"
            ? "now()"
            : `src.${pg.escapeIdentifier(c)}`,
      )
      .join(", ");
    // Oldest checkpoint first across threads, as a live database fills up.
    const order =
      table === "checkpoints" || table === "checkpoint_writes"
        ? "src.checkpoint_id, g"
        : table === "checkpoint_blobs"
          ? "src.version, src.channel, g"
          : "g";
    const client = await pool.connect();
    try {
      await client.query(`ALTER TABLE ${q}.${table} DISABLE TRIGGER USER`);
      for (let from = 1; from < threads; from += chunk) {
        const to = Math.min(threads - 1, from + chunk - 1);
        await client.query(
          `INSERT INTO ${q}.${table} (${list})
           SELECT ${values}
           FROM ${q}.${table} src, generate_series($2::int, $3::int) g
           WHERE src.thread_id = $1
           ORDER BY ${order}`,
          [TEMPLATE, from, to],
        );
      }
      await client.query(`ALTER TABLE ${q}.${table} ENABLE TRIGGER USER`);
    } finally {
      client.release();
    }
  }
}

import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  TASKS,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointTuple,
  type DeltaChannelHistory,
  type PendingWrite,
  type SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import type pg from "pg";
import { ThreadlineError } from "../../errors.js";
import { silentLogger, type Logger } from "../../logger.js";
import { isConnectionError, toThreadlineError } from "../../db/errors.js";
import { quoteSchema } from "../../db/identifier.js";
import { migrate } from "../../db/migrator.js";
import { ClientLease } from "../../db/lease.js";
import type { TextRow } from "../../db/text-rows-query.js";
import { attachPoolErrorHandler, createPool } from "../../db/pool.js";
import { withRetry, type RetryOptions } from "../../db/retry.js";
import { asCheckpointId, asId, asLimit, asNamespace, filterJson } from "../config-ids.js";
import { PUT_WRITES_ENCODED, type TakesEncodedWrites } from "../encoded-writes.js";
import { PayloadCodec } from "./codec.js";
import { DeltaCache, type DeltaBase } from "./delta-cache.js";
import { parseLoadRow } from "./load-rows.js";
import {
  assembleDeltaHistory,
  assembleTuples,
  type AssembleContext,
  type DeltaHistoryRow,
  type StoredWrite,
} from "./read.js";
import { Statements, type Statement } from "./statements.js";
import { planPut, planWrites, writeColumns, type PutPlan } from "./write-plan.js";
import { WriteQueue, mergeWrites, type WriteBatch } from "./write-queue.js";

/** Default byte budget of the delta cache: 64 MiB. */
export const DEFAULT_DELTA_CACHE_BYTES = 64 * 1024 * 1024;

/** Options of {@link PostgresCheckpointer}. */
export interface PostgresCheckpointerOptions {
  /** Postgres schema of the tables. Validated and escaped. Default `public`. */
  schema?: string;
  /**
   * `delta` (default) stores an append-only array channel (such as `messages`) as the elements
   * appended since the previous version, so a conversation's storage grows linearly. `full`
   * stores every version whole, exactly as `@langchain/langgraph-checkpoint-postgres` does, so
   * the official saver can read everything Threadline writes.
   */
  storage?: "delta" | "full";
  /** Use named prepared statements (default true). Turn off behind PgBouncer in transaction mode. */
  preparedStatements?: boolean;
  /** Retries of connection-level failures; every hot-path statement is idempotent. */
  retry?: RetryOptions;
  /**
   * Threads (x namespaces) whose array channels are remembered as delta bases. Default 10 000;
   * 0 turns the delta cache off (every put then writes whole values).
   */
  deltaCacheSize?: number;
  /**
   * Estimated bytes the remembered delta bases may keep alive (the messages themselves, shared
   * with the caller). Default 64 MiB. A thread evicted from the cache costs one full write.
   */
  deltaCacheMaxBytes?: number;
  /** Deltas stacked on one full value before a full value is written again. Default 256. */
  maxDeltaDepth?: number;
  /**
   * Coalesce pending writes with the next put of their thread (default true): writes issued while
   * a put of their thread is in flight are sent in the same statement as the put that follows
   * it (LangGraph's pattern), or alone once the event loop is idle; putWrites is acknowledged only
   * once its rows are committed either way. `false` sends every putWrites as its own statement.
   */
  coalesceWrites?: boolean;
  /** Serializer; default LangGraph's JsonPlusSerializer (same bytes as the official saver). */
  serde?: SerializerProtocol;
  logger?: Logger;
}

/** Options of {@link PostgresCheckpointer.fromConnString}. */
export interface FromConnStringOptions extends PostgresCheckpointerOptions {
  /** Extra `pg.Pool` settings (max, timeouts, ...). */
  pool?: pg.PoolConfig;
}

/**
 * A LangGraph checkpoint saver on PostgreSQL, schema-compatible with
 * `@langchain/langgraph-checkpoint-postgres` (same tables and columns, plus additive ones).
 *
 * Every operation is one statement and one round trip; blobs come back as separate rows of text
 * instead of `bytea[][]` literals; array channels are stored as deltas (see
 * {@link PostgresCheckpointerOptions.storage}); connection-level failures are retried.
 *
 * @example
 * const checkpointer = PostgresCheckpointer.fromConnString(process.env.DATABASE_URL!);
 * await checkpointer.setup();
 * const graph = builder.compile({ checkpointer });
 */
export class PostgresCheckpointer
  extends BaseCheckpointSaver<number>
  implements TakesEncodedWrites
{
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly storage: "delta" | "full";
  private readonly statements: Statements;
  private prepared: boolean;
  private readonly retry: RetryOptions;
  private readonly deltas: DeltaCache;
  private readonly maxDeltaDepth: number;
  private readonly logger: Logger;
  private readonly codec: PayloadCodec;
  private readonly read: AssembleContext;
  private readonly writeQueue: WriteQueue | undefined;
  /** Whether the schema is distributed (Citus), once known; see isDistributed. */
  private distributedSchema: Promise<boolean> | undefined;
  private readonly lease: ClientLease;
  private ownsPool = false;
  private setupPromise: Promise<void> | undefined;

  /**
   * @param pool a `pg.Pool` (an `error` listener is attached if it has none of Threadline's).
   * @param options schema (default `public`), storage mode, prepared statements, retries.
   */
  constructor(pool: pg.Pool, options: PostgresCheckpointerOptions = {}) {
    super(options.serde);
    const schema = options.schema ?? "public";
    quoteSchema(schema);
    this.pool = attachPoolErrorHandler(pool, options.logger);
    this.lease = new ClientLease(this.pool);
    this.schema = schema;
    this.storage = options.storage ?? "delta";
    this.statements = new Statements(schema);
    this.prepared = options.preparedStatements ?? true;
    this.retry = options.retry ?? {};
    this.deltas = new DeltaCache({
      maxThreads: options.deltaCacheSize ?? 10_000,
      maxBytes: options.deltaCacheMaxBytes ?? DEFAULT_DELTA_CACHE_BYTES,
    });
    this.maxDeltaDepth = options.maxDeltaDepth ?? 256;
    this.logger = options.logger ?? silentLogger;
    // The fast decoder reproduces JsonPlusSerializer; a custom serializer is always used as is.
    this.codec = new PayloadCodec(this.serde, options.serde === undefined);
    this.read = {
      codec: this.codec,
      deltas: this.deltas,
      storage: this.storage,
      pendingSends: (threadId, ns, parentId) => this.pendingSends(threadId, ns, parentId),
      // The version the official saver gives migrated sends when there is no other: stable
      // across reads (getNextVersion is random).
      nextVersion: () => 1,
    };
    if (options.coalesceWrites ?? true)
      this.writeQueue = new WriteQueue((batches) => this.storeWrites(batches));
  }

  /**
   * Creates a checkpointer with its own pool (an instance of the class it is called on, so
   * `MySaver.fromConnString(url)` is a MySaver). `end()` closes that pool.
   * @param url a PostgreSQL connection string.
   */
  static fromConnString<T extends PostgresCheckpointer>(
    this: new (pool: pg.Pool, options?: PostgresCheckpointerOptions) => T,
    url: string,
    options: FromConnStringOptions = {},
  ): T {
    const { pool: poolConfig, ...rest } = options;
    const pool = createPool({
      connectionString: url,
      ...(poolConfig ? { pg: poolConfig } : {}),
      ...(rest.logger ? { logger: rest.logger } : {}),
    });
    // `this`, not PostgresCheckpointer: a subclass gets an instance of itself.
    const saver = new this(pool, rest);
    (saver as PostgresCheckpointer).ownsPool = true;
    return saver;
  }

  /**
   * Creates or upgrades the tables (idempotent, safe when many processes call it at once).
   * Adopts a schema created by the official saver: its data stays readable.
   */
  async setup(): Promise<void> {
    this.setupPromise ??= migrate(this.pool, { schema: this.schema, logger: this.logger })
      .then(() => undefined)
      .catch((err: unknown) => {
        this.setupPromise = undefined;
        throw err;
      });
    return this.setupPromise;
  }

  /** Closes the pool if this checkpointer created it (fromConnString). */
  async end(): Promise<void> {
    await this.settleWrites();
    if (this.ownsPool) await this.pool.end();
  }

  private query<R extends pg.QueryResultRow>(
    stmt: Statement,
    values: unknown[],
    what: string,
  ): Promise<pg.QueryResult<R>> {
    return this.send(stmt, what, (name) =>
      this.lease.query<R>(
        name === undefined ? { text: stmt.text, values } : { name, text: stmt.text, values },
      ),
    );
  }

  /** A hot-path statement, its rows as column texts in select order (decision H47). */
  private textRows(stmt: Statement, values: unknown[], what: string): Promise<TextRow[]> {
    return this.send(stmt, what, (name) => this.lease.queryText(name, stmt.text, values));
  }

  /** Sends `stmt` (named while prepared statements are on), with retries; errors mapped. */
  private async send<T>(
    stmt: Statement,
    what: string,
    run: (name: string | undefined) => Promise<T>,
  ): Promise<T> {
    try {
      return await withRetry(async () => {
        const named = this.prepared;
        try {
          return await run(named ? stmt.name : undefined);
        } catch (err) {
          if (!named || !isPreparedStatementMismatch(err)) throw err;
          if (this.prepared) this.usePlainStatements(err);
          return await run(undefined);
        }
      }, this.retry);
    } catch (err) {
      throw toThreadlineError(err, what);
    }
  }

  /**
   * A transaction-mode pooler (PgBouncer) between us and Postgres hands each statement to any
   * server connection, where a statement `pg` prepared elsewhere is missing (26000) or one of
   * the same name already exists (42P05). Nothing ran (the error comes from Parse or Bind), so
   * the call is retried unnamed, and every later one is unnamed too: correct on any server
   * connection, at the cost of planning each statement.
   */
  private usePlainStatements(err: unknown): void {
    this.prepared = false;
    this.logger.warn(
      { code: (err as { code?: string }).code },
      "the server lost or duplicated a prepared statement (a transaction-mode pooler such as PgBouncer is in between): using unnamed statements from now on; set preparedStatements: false (database.preparedStatements) to say so up front",
    );
  }

  /** Whether this checkpointer still uses named prepared statements (see preparedStatements). */
  get usesPreparedStatements(): boolean {
    return this.prepared;
  }

  // ---------------------------------------------------------------- reads

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const c = config.configurable ?? {};
    const threadId = asId(c.thread_id, "thread_id", false);
    if (threadId === undefined) return undefined;
    const ns = asNamespace(c.checkpoint_ns);
    const checkpointId = asId(c.checkpoint_id, "checkpoint_id", false);
    await this.settleWrites(threadId);
    // Array values this process holds for the thread (with the identity of their rows): the
    // query confirms them instead of sending and decoding their chains again.
    const held = new Map<string, DeltaBase>();
    for (const [channel, base] of this.deltas.channels(threadId, ns) ?? []) {
      if (base.xmin !== undefined) held.set(channel, base);
    }
    // The held version itself and the earlier versions it extends (for reads by id).
    const known: [string[], string[], string[]] = [[], [], []];
    for (const [channel, base] of held) {
      for (const p of base.prefixes ?? []) {
        known[0].push(channel);
        known[1].push(p.version);
        known[2].push(p.xmin);
      }
      known[0].push(channel);
      known[1].push(base.version);
      known[2].push(base.xmin!);
    }
    const rows = checkpointId
      ? await this.textRows(
          this.statements.getById,
          [threadId, ns, checkpointId, ...known],
          "getTuple",
        )
      : await this.textRows(this.statements.getLatest, [threadId, ns, ...known], "getTuple");
    // Only the latest checkpoint becomes the base of later deltas and confirmations: reading an
    // older one (history, time travel) must not displace what the next write extends.
    const [tuple] = await assembleTuples(this.read, rows.map(parseLoadRow), !checkpointId, held);
    return tuple;
  }

  override async *list(
    config: RunnableConfig,
    options: CheckpointListOptions = {},
  ): AsyncGenerator<CheckpointTuple> {
    const c = config.configurable ?? {};
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace("?", `$${values.length}`));
    };
    const threadId = asId(c.thread_id, "thread_id", false);
    if (threadId !== undefined) add("thread_id = ?", threadId);
    if (c.checkpoint_ns !== undefined && c.checkpoint_ns !== null) {
      add("checkpoint_ns = ?", asNamespace(c.checkpoint_ns));
    }
    const checkpointId = asId(c.checkpoint_id, "checkpoint_id", false);
    if (checkpointId !== undefined) add("checkpoint_id = ?", checkpointId);
    const { filter, before, limit } = options;
    const filterText = filterJson(filter);
    if (filterText !== undefined) add("metadata @> ?::jsonb", filterText);
    const beforeId = asId(before?.configurable?.checkpoint_id, "checkpoint_id", false);
    if (beforeId !== undefined) add("checkpoint_id < ?", beforeId);
    let limitParam: string | undefined;
    const n = asLimit(limit);
    if (n !== undefined) {
      values.push(n);
      limitParam = `$${values.length}`;
    }
    await this.settleWrites(threadId);
    const distributed = threadId === undefined && (await this.isDistributed());
    const rows = await this.textRows(
      this.statements.list(where, limitParam, distributed),
      values,
      "list",
    );
    const tuples = await assembleTuples(this.read, rows.map(parseLoadRow), false, undefined);
    for (const tuple of tuples) yield tuple;
  }

  /**
   * The writes of `channels` along the checkpoint's ancestors and the value each walk stops at
   * (LangGraph's `DeltaChannel`, read at the start of every step): one statement however long
   * the thread, where the base class reads one checkpoint per ancestor.
   */
  override async getDeltaChannelHistory(options: {
    config: RunnableConfig;
    channels: string[];
  }): Promise<Record<string, DeltaChannelHistory>> {
    const { config, channels } = options;
    if (channels.length === 0) return {};
    const c = config.configurable ?? {};
    const threadId = asId(c.thread_id, "thread_id", false);
    if (threadId === undefined) return super.getDeltaChannelHistory(options);
    const ns = asNamespace(c.checkpoint_ns);
    const checkpointId = asId(c.checkpoint_id, "checkpoint_id", false) ?? null;
    const names = channels.map(String);
    await this.settleWrites(threadId);
    const { rows } = await this.query<DeltaHistoryRow>(
      this.statements.deltaHistory,
      [threadId, ns, checkpointId, names],
      "getDeltaChannelHistory",
    );
    return (
      (await assembleDeltaHistory(this.codec, channels, rows)) ??
      super.getDeltaChannelHistory(options)
    );
  }

  /**
   * Whether the schema is distributed with Citus, asked once per saver (a list across threads
   * takes another form there); a failed question is asked again next time.
   */
  private isDistributed(): Promise<boolean> {
    this.distributedSchema ??= this.query<{ distributed: boolean }>(
      this.statements.distributed,
      [],
      "list",
    ).then(
      ({ rows }) => rows[0]?.distributed === true,
      (err: unknown) => {
        this.distributedSchema = undefined;
        throw err;
      },
    );
    return this.distributedSchema;
  }

  /** The TASKS writes of a parent checkpoint (for checkpoints before format v4). */
  private async pendingSends(
    threadId: string,
    ns: string,
    parentId: string,
  ): Promise<StoredWrite[]> {
    const { rows } = await this.query<{
      type: string;
      task_path: string;
      task_id: string;
      idx: number;
      txt: string | null;
      b64: string | null;
    }>(this.statements.pendingSends, [threadId, ns, [parentId]], "getTuple (pending sends)");
    return rows.map((r) => ({
      taskId: r.task_id,
      channel: TASKS,
      type: r.type,
      taskPath: r.task_path,
      idx: r.idx,
      txt: r.txt,
      b64: r.b64,
    }));
  }

  // ---------------------------------------------------------------- writes

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    if (config.configurable === undefined) {
      throw new ThreadlineError("INVALID_INPUT", 'put: config is missing its "configurable" field');
    }
    const threadId = asId(config.configurable.thread_id, "thread_id", true);
    const ns = asNamespace(config.configurable.checkpoint_ns);
    const parentId = asId(config.configurable.checkpoint_id, "checkpoint_id", false) ?? null;
    asCheckpointId(checkpoint?.id, "put");
    // From the call on, a put of the thread is pending: writes issued meanwhile wait for the
    // next put (see WriteQueue).
    const queue = this.writeQueue;
    queue?.putStarted(threadId);
    try {
      return await this.storePut(threadId, ns, parentId, checkpoint, metadata, newVersions);
    } finally {
      queue?.putSettled(threadId);
    }
  }

  private async storePut(
    threadId: string,
    ns: string,
    parentId: string | null,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const { channel_values: _omit, ...stored } = checkpoint;
    // In delta storage the id is not repeated inside the JSON (it is the checkpoint_id column);
    // `full` keeps the official layout byte for byte.
    const storedJson = this.storage === "delta" ? { ...stored, id: undefined } : stored;
    const metadataJson =
      this.codec.metadataJsonSync(metadata) ?? (await this.codec.metadataJson(metadata));
    // Serialize before taking a connection, so the statement holds the pool only for its I/O.
    const planFor = (baseOf: (channel: string) => DeltaBase | undefined) =>
      planPut({
        values: checkpoint.channel_values ?? {},
        newVersions,
        storage: this.storage,
        maxDeltaDepth: this.maxDeltaDepth,
        baseOf,
        encoder: this.codec,
      });
    const paramsOf = (plan: PutPlan) => [
      threadId,
      ns,
      checkpoint.id,
      parentId,
      JSON.stringify(storedJson),
      metadataJson,
      plan.channels,
      plan.versions,
      plan.types,
      plan.txts,
      plan.b64s,
      plan.bases,
      plan.roots,
      plan.baseXmins,
    ];
    let plan = await planFor((channel) => this.deltas.get(threadId, ns, channel));
    let insertedBlobs = await this.storeCheckpoint(
      paramsOf(plan),
      this.writeQueue?.take(threadId, ns) ?? [],
    );
    if (insertedBlobs === undefined) {
      // A delta base is gone: another process deleted (or swept) the thread since this one read
      // it, and the put stored nothing. What this process remembers of the thread is history
      // now; stored whole, the checkpoint lands in a fresh thread (issue 11).
      this.deltas.deleteThread(threadId);
      this.logger.info(
        { threadId },
        "the thread was deleted by another process during this turn: its checkpoint is stored whole, as a fresh thread",
      );
      plan = await planFor(() => undefined);
      insertedBlobs = await this.storeCheckpoint(paramsOf(plan), []);
      if (insertedBlobs === undefined)
        throw new ThreadlineError("DB_ERROR", "put: the checkpoint was not stored");
    }
    const inserted = new Map(insertedBlobs);
    for (const r of plan.remember) {
      // A version that already existed (a retried put, or a forked thread reusing a version
      // number) holds someone else's bytes: never build deltas on it.
      const xmin = inserted.get(r.channel);
      if (xmin !== undefined) {
        this.deltas.set(threadId, ns, r.channel, {
          version: r.version,
          root: r.root,
          items: r.items,
          depth: r.depth,
          xmin,
          ...(r.prefixes.length > 0 ? { prefixes: r.prefixes } : {}),
        });
      } else this.deltas.delete(threadId, ns, r.channel);
    }
    return {
      configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id },
    };
  }

  /**
   * Runs the put statement, with the thread's queued writes when there are any (one round trip,
   * one commit). If that fails for a reason other than the connection, the checkpoint and the
   * writes are stored apart, so each caller gets its own outcome.
   */
  private async storeCheckpoint(
    params: unknown[],
    writes: WriteBatch[],
  ): Promise<Array<[string, string]> | undefined> {
    if (writes.length === 0)
      return storedOf(await this.textRows(this.statements.put, params, "put"));
    let rows: TextRow[];
    try {
      rows = await this.textRows(
        this.statements.putWithWrites,
        [...params, ...writeColumns(mergeWrites(writes))],
        "put",
      );
    } catch (err) {
      if (isConnectionError(err)) {
        for (const b of writes) b.reject(err);
        throw err;
      }
      const stored = this.storeWrites(writes);
      try {
        return storedOf(await this.textRows(this.statements.put, params, "put"));
      } finally {
        await stored;
      }
    }
    for (const b of writes) b.resolve();
    return storedOf(rows);
  }

  override putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath = "",
  ): Promise<void> {
    return this.storePutWrites(config, writes, taskId, taskPath, undefined);
  }

  /** {@link putWrites} with the values' texts made by the fallback (see encoded-writes.ts). */
  [PUT_WRITES_ENCODED](
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath: string | undefined,
    texts: readonly string[],
  ): Promise<void> {
    return this.storePutWrites(config, writes, taskId, taskPath ?? "", texts);
  }

  private async storePutWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath: string,
    texts: readonly string[] | undefined,
  ): Promise<void> {
    const c = config.configurable ?? {};
    const threadId = asId(c.thread_id, "thread_id", true);
    const ns = asNamespace(c.checkpoint_ns);
    const checkpointId = asId(c.checkpoint_id, "checkpoint_id", true);
    if (typeof taskId !== "string" || taskId === "") {
      throw new ThreadlineError("INVALID_INPUT", "putWrites: taskId must be a non-empty string");
    }
    if (writes.length === 0) return;
    const rows = await planWrites(
      {
        threadId,
        ns,
        checkpointId,
        taskId,
        taskPath: taskPath ?? "",
        storage: this.storage,
        encoder: this.codec,
      },
      writes,
      // Texts are fastEncode's output: only the default serializer would have made the same.
      this.codec.fastJson ? texts : undefined,
    );
    // Acknowledged once committed, alone or with the next put of the thread (WriteQueue).
    if (this.writeQueue?.holds(threadId)) return this.writeQueue.add(threadId, ns, rows);
    return new Promise<void>((resolve, reject) => {
      void this.storeWrites([{ threadId, ns, rows, resolve, reject }]);
    });
  }

  /**
   * Stores queued writes in one statement and settles their callers; never throws. When the
   * statement fails for a reason other than the connection, each call is retried on its own so
   * that one bad write does not fail the others.
   */
  private async storeWrites(batches: WriteBatch[]): Promise<void> {
    if (batches.length === 0) return;
    // One statement per thread (the thread is a parameter: a single-shard statement on Citus);
    // threads whose writes are due at the same time go concurrently.
    const threadId = batches[0]!.threadId;
    if (batches.some((b) => b.threadId !== threadId)) {
      const byThread = new Map<string, WriteBatch[]>();
      for (const b of batches) {
        let list = byThread.get(b.threadId);
        if (!list) byThread.set(b.threadId, (list = []));
        list.push(b);
      }
      await Promise.all([...byThread.values()].map((list) => this.storeWrites(list)));
      return;
    }
    try {
      const rows = mergeWrites(batches);
      await this.textRows(
        this.statements.putWrites,
        [threadId, rows.map((r) => r.ns), ...writeColumns(rows)],
        "putWrites",
      );
    } catch (err) {
      if (batches.length > 1 && !isConnectionError(err)) {
        await Promise.all(batches.map((b) => this.storeWrites([b])));
      } else for (const b of batches) b.reject(err);
      return;
    }
    for (const b of batches) b.resolve();
  }

  /** Sends the writes this process queued for a thread (or for all threads) and waits. */
  private async settleWrites(threadId?: string): Promise<void> {
    const queue = this.writeQueue;
    if (!queue || queue.size === 0) return;
    if (threadId !== undefined && !queue.has(threadId)) return;
    await this.storeWrites(threadId === undefined ? queue.takeAll() : queue.take(threadId));
  }

  override async deleteThread(threadId: string): Promise<void> {
    const id = asId(threadId, "thread_id", true);
    // Writes issued before the delete are deleted with the thread, not stored after it.
    await this.settleWrites(id);
    await this.query(this.statements.deleteThread, [id], "deleteThread");
    this.deltas.deleteThread(id);
  }

  /**
   * The next version of a channel: the integer part of `current` plus one, plus a random
   * fraction of 9 decimal digits. Two writers that fork from the same checkpoint (two processes, or
   * LangGraph's own forks) so never produce the same version, whose blob would keep only the
   * first writer's value (LangGraph's Python savers add a random suffix for the same reason).
   * Versions stay numbers, compared numerically by LangGraph, and strictly increase with the
   * integer part, so threads written by the official saver (integers) continue as they are, and
   * the official saver can continue threads written here. Python-style string versions
   * (`"000…0003.0.123"`) continue from their integer part.
   */
  override getNextVersion(current: number | undefined): number {
    return nextChannelVersion(current);
  }
}

/**
 * Decimal digits of the random fraction: two forks of one version collide with probability
 * 1e-9, and a version costs 10 bytes more than an integer wherever it is stored (blob keys,
 * channel_versions, versions_seen).
 */
const FRACTION_DIGITS = 9;

/** See {@link PostgresCheckpointer.getNextVersion}. */
export function nextChannelVersion(current: number | string | undefined | null): number {
  let n = 0;
  if (typeof current === "number") n = Math.floor(current);
  else if (typeof current === "string") n = Number.parseInt(current.split(".")[0] ?? "", 10);
  if (!Number.isFinite(n) || n < 0) n = 0;
  const k = 1 + Math.floor(Math.random() * (10 ** FRACTION_DIGITS - 1));
  // Parsed from its decimal text, so the number prints back as that text (at most 9 digits
  // after the point), the same in JSON, in Postgres' jsonb and in blob keys.
  return Number(`${n + 1}.${String(k).padStart(FRACTION_DIGITS, "0")}`);
}

/**
 * The blob rows a put statement inserted, as (channel, xmin) pairs: its one row's `stored`
 * column (JSON text); undefined when no row came back (a delta base was gone, nothing stored).
 */
function storedOf(rows: TextRow[]): Array<[string, string]> | undefined {
  const row = rows[0];
  if (row === undefined) return undefined;
  return JSON.parse(row[0] ?? "[]") as Array<[string, string]>;
}

/** 26000 "prepared statement does not exist", 42P05 "prepared statement already exists". */
function isPreparedStatementMismatch(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "26000" || code === "42P05";
}

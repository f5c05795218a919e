import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  TASKS,
  WRITES_IDX_MAP,
  compareWritesSortKeys,
  maxChannelVersion,
  writesSortKey,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type PendingWrite,
  type SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import type pg from "pg";
import { ThreadlineError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";
import { isConnectionError, toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { migrate } from "../db/migrator.js";
import { ClientLease } from "../db/lease.js";
import { attachPoolErrorHandler, createPool } from "../db/pool.js";
import { withRetry, type RetryOptions } from "../db/retry.js";
import { DeltaCache, prefixesAfter, type DeltaBase, type StoredPrefix } from "./delta-cache.js";
import { COMPRESSED_SUFFIX, compress, decompressToText } from "./compression.js";
import { FALLBACK, fastDecode } from "./fast-decode.js";
import { fastEncode } from "./fast-encode.js";
import { Statements, type LoadRow, type Statement } from "./statements.js";
import { WriteQueue, mergeWrites, type QueuedWrite, type WriteBatch } from "./write-queue.js";

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
  /** Array channels remembered as delta bases (thread x channel entries). Default 10 000. */
  deltaCacheSize?: number;
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

interface BlobRow {
  type: string;
  base: string | null;
  root: string | null;
  xmin: string | null;
  txt: string | null;
  b64: string | null;
}

interface CheckpointRow {
  threadId: string;
  ns: string;
  id: string;
  parentId: string | null;
  checkpoint: string;
  metadata: string;
}

interface WriteRow {
  taskId: string;
  channel: string;
  type: string;
  taskPath: string;
  idx: number;
  txt: string | null;
  b64: string | null;
}

const textDecoder = new TextDecoder();
const NUL_ESCAPE = "\\u0000";

function blobKey(threadId: string, ns: string, channel: string, version: string): string {
  return `${threadId}\u0000${ns}\u0000${channel}\u0000${version}`;
}

/** Deltas between a blob row and the full value its chain starts from. */
function chainDepth(
  blobs: Map<string, BlobRow>,
  threadId: string,
  ns: string,
  channel: string,
  head: BlobRow,
): number {
  let depth = 0;
  for (let row: BlobRow | undefined = head; row?.base; depth++) {
    row = blobs.get(blobKey(threadId, ns, channel, row.base));
    if (depth > 100_000) break;
  }
  return depth;
}

/** The per-row arrays of queued writes after thread and namespace, as the statements take them. */
function writeColumns(rows: QueuedWrite[]): unknown[] {
  return [
    rows.map((r) => r.checkpointId),
    rows.map((r) => r.taskId),
    rows.map((r) => r.taskPath),
    rows.map((r) => r.idx),
    rows.map((r) => r.channel),
    rows.map((r) => r.type),
    rows.map((r) => r.txt),
    rows.map((r) => r.b64),
  ];
}

/** A fresh array of the elements a held entry knows for `version` (itself or a stored prefix). */
function heldValue(base: DeltaBase | undefined, version: string): unknown[] | undefined {
  if (!base) return undefined;
  if (base.version === version) return base.items.slice();
  const prefix = base.prefixes?.find((p) => p.version === version);
  return prefix ? base.items.slice(0, prefix.length) : undefined;
}

/** Whether `value` begins with the very element objects of `prefix`. */
function startsWith(value: readonly unknown[], prefix: readonly unknown[]): boolean {
  if (prefix.length > value.length) return false;
  for (let i = 0; i < prefix.length; i++) if (value[i] !== prefix[i]) return false;
  return true;
}

function cpKey(threadId: string, ns: string, id: string): string {
  return `${threadId}\u0000${ns}\u0000${id}`;
}

/**
 * Serializer output as the (type, text, base64) triple the statements send. JSON travels as text;
 * with `compressed`, JSON worth compressing travels (and is stored) deflated, as `<type>+z1`.
 */
function toPayload(
  type: string,
  data: Uint8Array | string,
  compressed: boolean,
): { type: string; txt: string | null; b64: string | null } {
  if (compressed && (type === "json" || type === "delta")) {
    const packed = compress(typeof data === "string" ? Buffer.from(data) : data);
    if (packed)
      return { type: `${type}${COMPRESSED_SUFFIX}`, txt: null, b64: packed.toString("base64") };
  }
  if (type === "json" || type === "delta")
    return { type, txt: typeof data === "string" ? data : textDecoder.decode(data), b64: null };
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  return {
    type,
    txt: null,
    b64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
  };
}

function payloadData(txt: string | null, b64: string | null): string | Uint8Array {
  if (txt !== null) return txt;
  return b64 === null ? new Uint8Array() : new Uint8Array(Buffer.from(b64, "base64"));
}

/** jsonb cannot hold U+0000: drop it instead of failing the whole checkpoint (22P05). */
function withoutNul(json: string): string {
  return json.includes(NUL_ESCAPE) ? JSON.stringify(stripNul(JSON.parse(json))) : json;
}

/** Removes NUL characters (which jsonb cannot hold) from every string and key of a JSON value. */
function stripNul(value: unknown): unknown {
  if (typeof value === "string") return value.replace(/\0/g, "");
  if (Array.isArray(value)) return value.map(stripNul);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k.replace(/\0/g, ""),
        stripNul(v),
      ]),
    );
  }
  return value;
}

function asId(value: unknown, field: string, required: true): string;
function asId(value: unknown, field: string, required: false): string | undefined;
function asId(value: unknown, field: string, required: boolean): string | undefined {
  if (value === undefined || value === null || value === "") {
    if (required) {
      throw new ThreadlineError(
        "INVALID_INPUT",
        `config.configurable.${field} is required (e.g. { configurable: { thread_id: "my-thread" } })`,
      );
    }
    return undefined;
  }
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw new ThreadlineError(
    "INVALID_INPUT",
    `config.configurable.${field} must be a string, got ${Array.isArray(value) ? "array" : typeof value}`,
  );
}

function asNamespace(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  throw new ThreadlineError("INVALID_INPUT", "config.configurable.checkpoint_ns must be a string");
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
export class PostgresCheckpointer extends BaseCheckpointSaver<number> {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly storage: "delta" | "full";
  private readonly statements: Statements;
  private readonly prepared: boolean;
  private readonly retry: RetryOptions;
  private readonly deltas: DeltaCache;
  private readonly maxDeltaDepth: number;
  private readonly logger: Logger;
  private readonly fastJson: boolean;
  private readonly writeQueue: WriteQueue | undefined;
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
    this.deltas = new DeltaCache(options.deltaCacheSize ?? 10_000);
    this.maxDeltaDepth = options.maxDeltaDepth ?? 256;
    this.logger = options.logger ?? silentLogger;
    // The fast decoder reproduces JsonPlusSerializer; a custom serializer is always used as is.
    this.fastJson = options.serde === undefined;
    if (options.coalesceWrites ?? true)
      this.writeQueue = new WriteQueue((batches) => this.storeWrites(batches));
  }

  /**
   * The serializer's output for `value` without awaiting, when the default serializer is in use
   * and the value is plain JSON (see fast-encode.ts); undefined means "ask the serializer".
   * Bytes are never produced here, so a Uint8Array value (type "bytes") always falls through.
   */
  private encodeSync(value: unknown): [string, string] | undefined {
    if (!this.fastJson || value instanceof Uint8Array) return undefined;
    const text = fastEncode(value);
    return text === undefined ? undefined : ["json", text];
  }

  /** Decodes one stored payload; synchronous for plain JSON and LangChain messages. */
  private decode(type: string, txt: string | null, b64: string | null): unknown {
    if (type.endsWith(COMPRESSED_SUFFIX)) {
      txt = decompressToText(payloadData(null, b64) as Uint8Array);
      b64 = null;
      type = type.slice(0, -COMPRESSED_SUFFIX.length);
    }
    if (type === "delta") type = "json";
    if (this.fastJson && type === "json" && txt !== null) {
      const value = fastDecode(txt);
      if (value !== FALLBACK) return value;
    }
    return this.serde.loadsTyped(type, payloadData(txt, b64));
  }

  /**
   * Creates a checkpointer with its own pool. `end()` closes that pool.
   * @param url a PostgreSQL connection string.
   */
  static fromConnString(url: string, options: FromConnStringOptions = {}): PostgresCheckpointer {
    const { pool: poolConfig, ...rest } = options;
    const pool = createPool({
      connectionString: url,
      ...(poolConfig ? { pg: poolConfig } : {}),
      ...(rest.logger ? { logger: rest.logger } : {}),
    });
    const saver = new PostgresCheckpointer(pool, rest);
    saver.ownsPool = true;
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

  private async query<R extends pg.QueryResultRow>(
    stmt: Statement,
    values: unknown[],
    what: string,
  ): Promise<pg.QueryResult<R>> {
    const config: pg.QueryConfig = this.prepared
      ? { name: stmt.name, text: stmt.text, values }
      : { text: stmt.text, values };
    try {
      return await withRetry(() => this.lease.query<R>(config), this.retry);
    } catch (err) {
      throw toThreadlineError(err, what);
    }
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
    const { rows } = checkpointId
      ? await this.query<LoadRow>(
          this.statements.getById,
          [threadId, ns, checkpointId, ...known],
          "getTuple",
        )
      : await this.query<LoadRow>(this.statements.getLatest, [threadId, ns, ...known], "getTuple");
    // Only the latest checkpoint becomes the base of later deltas and confirmations: reading an
    // older one (history, time travel) must not displace what the next write extends.
    const [tuple] = await this.assemble(rows, !checkpointId, held);
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
    if (filter && Object.keys(filter).length > 0)
      add("metadata @> ?::jsonb", JSON.stringify(filter));
    const beforeId = asId(before?.configurable?.checkpoint_id, "checkpoint_id", false);
    if (beforeId !== undefined) add("checkpoint_id < ?", beforeId);
    let limitParam: string | undefined;
    if (limit !== undefined && limit !== null) {
      const n = Math.trunc(Number(limit));
      if (!Number.isFinite(n))
        throw new ThreadlineError("INVALID_INPUT", "list limit must be a number");
      values.push(Math.max(0, n));
      limitParam = `$${values.length}`;
    }
    await this.settleWrites(threadId);
    const { rows } = await this.query<LoadRow>(
      this.statements.list(where, limitParam),
      values,
      "list",
    );
    for (const tuple of await this.assemble(rows, false, undefined)) yield tuple;
  }

  /**
   * Turns the rows of a load query into tuples, decoding each blob once: consecutive checkpoints
   * that share a channel version (or, through deltas, a prefix of it) share the decoded objects.
   */
  private async assemble(
    rows: LoadRow[],
    rememberBases: boolean,
    held: Map<string, DeltaBase> | undefined,
  ): Promise<CheckpointTuple[]> {
    const checkpoints: Array<CheckpointRow> = [];
    const blobs = new Map<string, BlobRow>();
    const confirmed = new Set<string>();
    const writes = new Map<string, WriteRow[]>();
    for (const row of rows) {
      if (row.kind === 0) {
        checkpoints.push({
          threadId: row.thread_id,
          ns: row.checkpoint_ns,
          id: row.c1,
          parentId: row.c2,
          checkpoint: row.c3 ?? "{}",
          metadata: row.c4 ?? "{}",
        });
      } else if (row.kind === 1) {
        blobs.set(blobKey(row.thread_id, row.checkpoint_ns, row.c1, row.c2 ?? ""), {
          type: row.c3 ?? "empty",
          base: row.c4,
          root: row.c5,
          xmin: row.c6,
          txt: row.txt,
          b64: row.b64,
        });
      } else if (row.kind === 3) {
        confirmed.add(blobKey(row.thread_id, row.checkpoint_ns, row.c1, row.c2 ?? ""));
      } else {
        const key = cpKey(row.thread_id, row.checkpoint_ns, row.c1);
        let list = writes.get(key);
        if (!list) writes.set(key, (list = []));
        list.push({
          taskId: row.c2 ?? "",
          channel: row.c3 ?? "",
          type: row.c4 ?? "json",
          taskPath: row.c5 ?? "",
          idx: row.n ?? 0,
          txt: row.txt,
          b64: row.b64,
        });
      }
    }
    if (checkpoints.length === 0) return [];
    checkpoints.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));

    const values = new Map<string, Promise<unknown>>();
    const resolve = (
      threadId: string,
      ns: string,
      channel: string,
      version: string,
      depth = 0,
    ): Promise<unknown> => {
      const key = blobKey(threadId, ns, channel, version);
      let value = values.get(key);
      if (value) return value;
      const row = blobs.get(key);
      if (!row) {
        return Promise.reject(
          new ThreadlineError(
            "DATA_CORRUPT",
            `blob ${channel}@${version} of thread ${threadId} is missing`,
          ),
        );
      }
      if (!row.type.startsWith("delta")) {
        value = Promise.resolve(this.decode(row.type, row.txt, row.b64));
      } else {
        if (row.base === null || depth > 100_000) {
          return Promise.reject(
            new ThreadlineError("DATA_CORRUPT", `delta ${channel}@${version} has no base`),
          );
        }
        const base = resolve(threadId, ns, channel, row.base, depth + 1);
        const suffix = Promise.resolve(this.decode(row.type, row.txt, row.b64));
        value = Promise.all([base, suffix]).then(([b, s]) => {
          if (!Array.isArray(b) || !Array.isArray(s)) {
            throw new ThreadlineError(
              "DATA_CORRUPT",
              `delta ${channel}@${version} does not extend an array`,
            );
          }
          return (b as unknown[]).concat(s as unknown[]);
        });
      }
      values.set(key, value);
      return value;
    };

    const tuples: CheckpointTuple[] = [];
    for (const row of checkpoints) {
      let checkpoint: Checkpoint;
      try {
        checkpoint = JSON.parse(row.checkpoint) as Checkpoint;
      } catch (err) {
        throw new ThreadlineError("DATA_CORRUPT", `checkpoint ${row.id} is not valid JSON`, {
          cause: err,
        });
      }
      // Delta storage leaves out the id (it is the checkpoint_id column).
      checkpoint.id ??= row.id;
      checkpoint.channel_versions ??= {};
      checkpoint.versions_seen ??= {};
      const channelValues: Record<string, unknown> = {};
      await Promise.all(
        Object.entries(checkpoint.channel_versions).map(async ([channel, version]) => {
          const key = blobKey(row.threadId, row.ns, channel, String(version));
          if (confirmed.has(key)) {
            // Confirmed rows are exactly the ones the query was told this process holds.
            const mine = heldValue(held?.get(channel), String(version));
            if (!mine) throw new ThreadlineError("DATA_CORRUPT", `held ${channel}@${version} lost`);
            channelValues[channel] = mine;
            return;
          }
          const blob = blobs.get(key);
          // Like the official saver: a version without a blob row (or an "empty" one) is absent.
          if (!blob || blob.type === "empty") return;
          const value = await resolve(row.threadId, row.ns, channel, String(version));
          // Each tuple gets its own array; the elements are shared.
          channelValues[channel] = Array.isArray(value) ? value.slice() : value;
          if (rememberBases && this.storage === "delta" && Array.isArray(value)) {
            this.deltas.set(row.threadId, row.ns, channel, {
              version: String(version),
              root: blob.root ?? String(version),
              items: value.slice(),
              depth: chainDepth(blobs, row.threadId, row.ns, channel, blob),
              ...(blob.xmin !== null ? { xmin: blob.xmin } : {}),
            });
          }
        }),
      );
      checkpoint.channel_values = channelValues;

      const pendingWrites = await this.decodeWrites(
        writes.get(cpKey(row.threadId, row.ns, row.id)) ?? [],
      );
      if (checkpoint.v < 4 && row.parentId)
        await this.migratePendingSends(checkpoint, row.threadId, row.ns, row.parentId);

      const metadata = (await this.decode("json", row.metadata, null)) as CheckpointMetadata;
      const tuple: CheckpointTuple = {
        config: {
          configurable: { thread_id: row.threadId, checkpoint_ns: row.ns, checkpoint_id: row.id },
        },
        checkpoint,
        metadata,
        pendingWrites,
      };
      if (row.parentId) {
        tuple.parentConfig = {
          configurable: {
            thread_id: row.threadId,
            checkpoint_ns: row.ns,
            checkpoint_id: row.parentId,
          },
        };
      }
      tuples.push(tuple);
    }
    return tuples;
  }

  /** Pending writes in the contract's order: (task_path, task_id, idx), by code point. */
  private async decodeWrites(rows: WriteRow[]): Promise<CheckpointPendingWrite[]> {
    if (rows.length === 0) return [];
    const keyed = rows.map((w) => ({ key: writesSortKey(w.taskPath, w.taskId, w.idx), w }));
    keyed.sort((a, b) => compareWritesSortKeys(a.key, b.key));
    return Promise.all(
      keyed.map(async ({ w }): Promise<CheckpointPendingWrite> => [
        w.taskId,
        w.channel,
        await this.decode(w.type, w.txt, w.b64),
      ]),
    );
  }

  /** Checkpoints before format v4 kept pending sends as TASKS writes of their parent. */
  private async migratePendingSends(
    checkpoint: Checkpoint,
    threadId: string,
    ns: string,
    parentId: string,
  ): Promise<void> {
    const { rows } = await this.query<{
      type: string;
      task_path: string;
      task_id: string;
      idx: number;
      txt: string | null;
      b64: string | null;
    }>(this.statements.pendingSends, [threadId, ns, [parentId]], "getTuple (pending sends)");
    const sends = await this.decodeWrites(
      rows.map((r) => ({
        taskId: r.task_id,
        channel: TASKS,
        type: r.type,
        taskPath: r.task_path,
        idx: r.idx,
        txt: r.txt,
        b64: r.b64,
      })),
    );
    checkpoint.channel_values[TASKS] = sends.map(([, , value]) => value);
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[TASKS] =
      versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
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
    if (typeof checkpoint?.id !== "string" || checkpoint.id === "") {
      throw new ThreadlineError("INVALID_INPUT", "put: checkpoint.id must be a non-empty string");
    }
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
    // Serialize before taking a connection, so the statement holds the pool only for its I/O.
    const channels: string[] = [];
    const versions: string[] = [];
    const types: string[] = [];
    const txts: Array<string | null> = [];
    const b64s: Array<string | null> = [];
    const bases: Array<string | null> = [];
    const roots: Array<string | null> = [];
    const remember: Array<{
      channel: string;
      version: string;
      root: string;
      items: unknown[];
      depth: number;
      prefixes: StoredPrefix[];
    }> = [];
    const values = checkpoint.channel_values ?? {};
    for (const [channel, rawVersion] of Object.entries(newVersions ?? {})) {
      const version = String(rawVersion);
      // A channel without a value needs no row: readers treat a missing row exactly like the
      // official saver's "empty" row (the channel is absent).
      if (!(channel in values)) continue;
      channels.push(channel);
      versions.push(version);
      const value = values[channel];
      // What this process last stored or loaded for the channel, if it may extend it.
      const prev =
        this.storage === "delta" && Array.isArray(value)
          ? this.deltas.get(threadId, ns, channel)
          : undefined;
      const extendsPrev =
        prev !== undefined &&
        prev.version !== version &&
        Array.isArray(value) &&
        startsWith(value, prev.items);
      const base =
        extendsPrev && prev.items.length > 0 && prev.depth < this.maxDeltaDepth ? prev : undefined;
      if (base && Array.isArray(value)) {
        const suffix = value.slice(base.items.length);
        const [type, data] = this.encodeSync(suffix) ?? (await this.serde.dumpsTyped(suffix));
        if (type === "json") {
          const payload = toPayload("delta", data, true);
          types.push(payload.type);
          txts.push(payload.txt);
          b64s.push(payload.b64);
          bases.push(base.version);
          roots.push(base.root);
          remember.push({
            channel,
            version,
            root: base.root,
            items: value.slice(),
            depth: base.depth + 1,
            prefixes: prefixesAfter(base),
          });
          continue;
        }
      }
      const [type, data] = this.encodeSync(value) ?? (await this.serde.dumpsTyped(value));
      const payload = toPayload(type, data, this.storage === "delta");
      types.push(payload.type);
      txts.push(payload.txt);
      b64s.push(payload.b64);
      bases.push(null);
      roots.push(null);
      if (this.storage === "delta" && Array.isArray(value)) {
        // A full value (a new chain) still extends what this process stored before, when its
        // elements are the same objects: those rows stay valid prefixes.
        const prefixes = extendsPrev ? prefixesAfter(prev) : [];
        remember.push({
          channel,
          version,
          root: version,
          items: value.slice(),
          depth: 0,
          prefixes,
        });
      }
    }
    const { channel_values: _omit, ...stored } = checkpoint;
    // In delta storage the id is not repeated inside the JSON (it is the checkpoint_id column);
    // `full` keeps the official layout byte for byte.
    const storedJson = this.storage === "delta" ? { ...stored, id: undefined } : stored;
    const fastMetadata = this.encodeSync(metadata ?? {});
    const metadataJson = fastMetadata
      ? withoutNul(fastMetadata[1])
      : await this.dumpMetadata(metadata);

    const params = [
      threadId,
      ns,
      checkpoint.id,
      parentId,
      JSON.stringify(storedJson),
      metadataJson,
      channels,
      versions,
      types,
      txts,
      b64s,
      bases,
      roots,
    ];
    const rows = await this.storeCheckpoint(params, this.writeQueue?.take(threadId, ns) ?? []);
    const inserted = new Map(rows[0]?.stored ?? []);
    for (const r of remember) {
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
  ): Promise<Array<{ stored: Array<[string, string]> }>> {
    type Stored = { stored: Array<[string, string]> };
    if (writes.length === 0)
      return (await this.query<Stored>(this.statements.put, params, "put")).rows;
    let result: pg.QueryResult<Stored>;
    try {
      result = await this.query<Stored>(
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
        return (await this.query<Stored>(this.statements.put, params, "put")).rows;
      } finally {
        await stored;
      }
    }
    for (const b of writes) b.resolve();
    return result.rows;
  }

  private async dumpMetadata(metadata: CheckpointMetadata): Promise<string> {
    const [, bytes] = await this.serde.dumpsTyped(metadata ?? {});
    return withoutNul(textDecoder.decode(bytes));
  }

  override async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath = "",
  ): Promise<void> {
    const c = config.configurable ?? {};
    const threadId = asId(c.thread_id, "thread_id", true);
    const ns = asNamespace(c.checkpoint_ns);
    const checkpointId = asId(c.checkpoint_id, "checkpoint_id", true);
    if (typeof taskId !== "string" || taskId === "") {
      throw new ThreadlineError("INVALID_INPUT", "putWrites: taskId must be a non-empty string");
    }
    if (writes.length === 0) return;
    // One row per (task, idx): special channels have fixed negative slots and the last one wins;
    // for the others the first one wins, as in MemorySaver.
    const byIdx = new Map<number, PendingWrite>();
    writes.forEach((write, i) => {
      const special = WRITES_IDX_MAP[write[0]];
      const idx = special ?? i;
      if (special !== undefined || !byIdx.has(idx)) byIdx.set(idx, write);
    });
    const rows: QueuedWrite[] = [];
    for (const [idx, [channel, value]] of byIdx) {
      const [type, data] = this.encodeSync(value) ?? (await this.serde.dumpsTyped(value));
      const payload = toPayload(type, data, this.storage === "delta");
      rows.push({
        threadId,
        ns,
        checkpointId,
        taskId,
        taskPath: taskPath ?? "",
        idx,
        channel,
        type: payload.type,
        txt: payload.txt,
        b64: payload.b64,
      });
    }
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
    try {
      const rows = mergeWrites(batches);
      await this.query(
        this.statements.putWrites,
        [rows.map((r) => r.threadId), rows.map((r) => r.ns), ...writeColumns(rows)],
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
   * Integer versions, as the official saver uses. String versions written by the Python savers
   * (`"000…0003.0.123"`) continue from their integer part instead of failing the next step.
   */
  override getNextVersion(current: number | undefined): number {
    if (current === undefined || current === null) return 1;
    if (typeof current === "number") return current + 1;
    const n = Number.parseInt(String(current).split(".")[0] ?? "", 10);
    return Number.isFinite(n) ? n + 1 : 1;
  }
}

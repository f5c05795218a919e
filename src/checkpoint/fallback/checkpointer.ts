import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointTuple,
  type DeltaChannelHistory,
  type PendingWrite,
} from "@langchain/langgraph-checkpoint";
import { isConnectionError, toThreadlineError } from "../../db/errors.js";
import { withRetry, type RetryOptions } from "../../db/retry.js";
import {
  asCheckpointId,
  asId,
  asLimit,
  asNamespace,
  assertStorable,
  filterJson,
} from "../config-ids.js";
import { ThreadlineError } from "../../errors.js";
import { silentLogger, type Logger } from "../../logger.js";
import { PUT_WRITES_ENCODED, takesEncodedWrites } from "../encoded-writes.js";
import { FallbackStore } from "./memory-store.js";
import { OutageState, type FallbackMode } from "./outage.js";
import type { PendingCheckpoint, Serialized } from "./pending-log.js";
import { replayLog } from "./replay.js";

export type { FallbackMode } from "./outage.js";

/** Options of {@link FallbackCheckpointer}. Durations are milliseconds. */
export interface FallbackCheckpointerOptions {
  /**
   * Serve from memory while the primary is unreachable. Default true. With false an outage fails
   * every call with a `DB_UNAVAILABLE` ThreadlineError and nothing is held in memory.
   */
  enabled?: boolean;
  /** Pending checkpoints + writes (+ deletes) held at most; then writes fail with FALLBACK_FULL. Default 100 000. */
  maxPendingEntries?: number;
  /** Pending serialized bytes held at most; then writes fail with FALLBACK_FULL. Default 256 MiB. */
  maxPendingBytes?: number;
  /** First probe delay after an outage begins; doubles (with jitter) per failed probe. Default 1 000. */
  probeIntervalMs?: number;
  /** Longest delay between two probes. Default 30 000. */
  probeMaxIntervalMs?: number;
  /**
   * Threads whose latest checkpoints are cached while the primary is up, so that a thread begun
   * before an outage and continued during it reads whole. Default 10 000; 0 disables the cache.
   */
  cacheMaxThreads?: number;
  /** Bytes the cache of already-durable checkpoints may hold. Default 64 MiB. */
  cacheMaxBytes?: number;
  /** Durable checkpoints cached per thread and namespace. Default 2 (the latest and its parent). */
  cacheCheckpointsPerNamespace?: number;
  /**
   * A primary call still unanswered after this long counts as an outage (a black-holed network
   * never errors). The call is abandoned, not cancelled: writes are idempotent and are replayed.
   * Default 15 000; 0 = wait forever.
   */
  operationTimeoutMs?: number;
  /**
   * Retries of a primary call on connection-level errors before falling back (a connection
   * terminated while idle succeeds on a fresh one). Default `{ attempts: 2, baseDelayMs: 10,
   * maxDelayMs: 50 }`. The Postgres checkpointer retries on its own too.
   */
  retry?: RetryOptions;
  /** Operations replayed concurrently (different threads only; one thread is always in order). Default 4. */
  replayConcurrency?: number;
  /**
   * Checks that the primary answers. Default: `primary.getTuple` of a thread that does not exist.
   * A probe that resolves ends the outage (after `setup` and the replay).
   */
  probe?: () => Promise<void>;
  /**
   * Run once before the first replay, e.g. `() => checkpointer.setup()`, for a process that
   * started while Postgres was down and never installed the schema.
   */
  setup?: () => Promise<void>;
  logger?: Logger;
  /** Called on every mode change (after it is logged). */
  onModeChange?: (mode: FallbackMode, status: FallbackStatus) => void;
}

/** What {@link FallbackCheckpointer.status} reports (also `/health/db` and the metrics). */
export interface FallbackStatus {
  mode: FallbackMode;
  /** Checkpoints, writes and deletes acknowledged in memory and not yet in Postgres. */
  pending: number;
  /** Their serialized size in bytes. */
  pendingBytes: number;
  /** When the current mode began (ISO 8601). */
  since: string;
  /** The error that started the current outage, or the last failed probe (no SQL, no data). */
  lastError?: string;
  /** Entries replayed to Postgres since the process started. */
  replayed: number;
  /** Operations Postgres refused during replay for a reason other than reachability (logged, kept out of the log). */
  failed: number;
  /** Mode changes since the process started. */
  transitions: number;
  /** Bytes of the read-through cache of recent checkpoints (already durable). */
  cachedBytes: number;
  /** Postgres answers again and the log is being replayed (mode is still `fallback`). */
  replaying: boolean;
}

const PROBE_THREAD = "__threadline_probe__";

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? `${e.code}: ` : "";
  const message = typeof e?.message === "string" ? e.message : String(err);
  return `${code}${message}`.slice(0, 500);
}

function threadIdOf(config: RunnableConfig, field: "thread_id" | "checkpoint_id" = "thread_id") {
  return asId((config.configurable ?? {})[field], field, false);
}

function requireId(config: RunnableConfig, field: "thread_id" | "checkpoint_id", what: string) {
  const id = threadIdOf(config, field);
  if (id === undefined) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `${what}: config.configurable.${field} is required (e.g. { configurable: { thread_id: "my-thread" } })`,
    );
  }
  return id;
}

function namespaceOf(config: RunnableConfig): string {
  return asNamespace((config.configurable ?? {}).checkpoint_ns);
}

/**
 * Refuses, before anything is acknowledged in memory, what Postgres would refuse at replay: ids
 * (checked by the callers), values the serializer cannot store faithfully.
 */
function assertStorableCheckpoint(
  checkpoint: Checkpoint,
  metadata: CheckpointMetadata,
  newVersions: ChannelVersions,
): void {
  const values: Record<string, unknown> = checkpoint.channel_values ?? {};
  for (const channel of Object.keys(newVersions ?? {})) {
    if (channel in values) assertStorable(values[channel], "put", `channel_values.${channel}`);
  }
  assertStorable(metadata, "put", "metadata");
}

/**
 * A checkpoint saver that keeps an agent running when Postgres does not, and loses nothing.
 *
 * It forwards every call to the primary saver (normally {@link PostgresCheckpointer}). When a call
 * fails because the database is unreachable (refused, reset, timed out, terminated: see
 * `classifyDbError`, never constraint or serialization errors), it switches to mode `fallback`:
 * every call is served from memory, writes are acknowledged and logged, and the primary is probed
 * with exponential backoff. When a probe succeeds the log is replayed through the primary's own
 * `put`/`putWrites`/`deleteThread` (idempotent upserts), per thread in acknowledgement order, and
 * the mode returns to `primary` once nothing is pending.
 *
 * While the primary is up it also caches each active thread's latest checkpoints (bounded, see
 * `cacheMaxThreads`), so a conversation begun before an outage reads whole during it.
 *
 * Limits: memory is bounded by `maxPendingEntries`/`maxPendingBytes`; beyond them writes fail
 * with `FALLBACK_FULL` instead of evicting anything acknowledged. During an outage `list()` sees
 * only what memory holds (the cached recent checkpoints and everything written since). Pending
 * entries live in this process: if it dies before Postgres returns, they are lost (logged at
 * `close()`).
 *
 * @example
 * const primary = new PostgresCheckpointer(pool, { schema });
 * const checkpointer = new FallbackCheckpointer(primary, { setup: () => primary.setup(), logger });
 * await checkpointer.start();
 * const graph = builder.compile({ checkpointer });
 */
export class FallbackCheckpointer extends BaseCheckpointSaver {
  readonly primary: BaseCheckpointSaver;
  private readonly enabled: boolean;
  private readonly store: FallbackStore;
  private readonly logger: Logger;
  private readonly retry: RetryOptions;
  private readonly operationTimeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly replayConcurrency: number;
  private readonly probeFn: () => Promise<void>;
  private readonly setupFn: (() => Promise<void>) | undefined;
  private readonly onModeChange: FallbackCheckpointerOptions["onModeChange"];

  /** Mode and transitions: the state machine documented in outage.ts. */
  private readonly outage: OutageState;
  private replayed = 0;
  private failed = 0;
  /** True from a successful probe until its replay round ends (see FallbackStatus.replaying). */
  private replaying = false;
  private setupDone = false;

  /**
   * @param primary the saver to protect (any BaseCheckpointSaver; its serializer is reused).
   * @param options limits, probing and cache settings; see {@link FallbackCheckpointerOptions}.
   */
  constructor(primary: BaseCheckpointSaver, options: FallbackCheckpointerOptions = {}) {
    super(primary.serde);
    this.primary = primary;
    this.enabled = options.enabled ?? true;
    this.logger = options.logger ?? silentLogger;
    this.retry = options.retry ?? { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 };
    this.operationTimeoutMs = options.operationTimeoutMs ?? 15_000;
    this.probeIntervalMs = Math.max(1, options.probeIntervalMs ?? 1_000);
    this.outage = new OutageState({
      probeIntervalMs: this.probeIntervalMs,
      probeMaxIntervalMs: Math.max(this.probeIntervalMs, options.probeMaxIntervalMs ?? 30_000),
      round: () => this.probeAndReplay(),
    });
    this.replayConcurrency = Math.max(1, options.replayConcurrency ?? 4);
    this.setupFn = options.setup;
    this.onModeChange = options.onModeChange;
    this.probeFn =
      options.probe ??
      (async () => {
        await this.primary.getTuple({
          configurable: { thread_id: PROBE_THREAD, checkpoint_ns: "" },
        });
      });
    this.store = new FallbackStore(
      primary.serde,
      {
        maxPendingEntries: options.maxPendingEntries ?? 100_000,
        maxPendingBytes: options.maxPendingBytes ?? 256 * 1024 * 1024,
        // Without a fallback nothing may be held in memory, not even a cache.
        cacheMaxThreads: this.enabled ? (options.cacheMaxThreads ?? 10_000) : 0,
        cacheMaxBytes: options.cacheMaxBytes ?? 64 * 1024 * 1024,
        cacheCheckpointsPerNamespace: options.cacheCheckpointsPerNamespace ?? 2,
      },
      (current) => this.primary.getNextVersion(current as never),
      () => (this.replaying ? "replaying" : "outage"),
    );
  }

  /** The current mode. */
  get mode(): FallbackMode {
    return this.outage.mode;
  }

  /** Mode, pending entries and counters; cheap, for health checks and metrics. */
  status(): FallbackStatus {
    const { outage } = this;
    return {
      mode: outage.mode,
      pending: this.store.pendingEntries,
      pendingBytes: this.store.pendingBytes,
      since: outage.since.toISOString(),
      ...(outage.lastError !== undefined ? { lastError: outage.lastError } : {}),
      replayed: this.replayed,
      failed: this.failed,
      transitions: outage.transitions,
      cachedBytes: this.store.cachedBytes,
      replaying: this.replaying,
    };
  }

  /**
   * Checks the primary once (running `setup` first if given): resolves in mode `primary` when it
   * answers, in mode `fallback` (probing in the background) when it is unreachable. Rethrows
   * anything else (a schema newer than the code, bad credentials mapped as errors, ...), and with
   * `enabled: false` an unreachable primary as `DB_UNAVAILABLE`.
   */
  async start(): Promise<void> {
    try {
      await this.callPrimary(async () => {
        await this.runSetup();
        await this.probeFn();
      });
    } catch (err) {
      if (!this.isOutage(err)) throw err;
      this.enterFallback(err, "start");
    }
  }

  /**
   * Tries to replay everything pending now (instead of waiting for the next probe). Resolves to
   * true when nothing is pending afterwards. Use before a planned shutdown.
   */
  async flush(): Promise<boolean> {
    if (this.outage.mode === "fallback") await this.outage.probeNow();
    return this.store.logSize === 0;
  }

  /**
   * Stops probing and, if the primary has `end()`, closes it. Anything still pending is lost with
   * the process; it is logged at error level with its size.
   */
  async close(): Promise<void> {
    await this.outage.close();
    if (this.store.pendingEntries > 0) {
      this.logger.error(
        { pending: this.store.pendingEntries, pendingBytes: this.store.pendingBytes },
        "closing the fallback checkpointer with entries Postgres never received: they are lost",
      );
    }
    const end = (this.primary as { end?: () => Promise<void> }).end;
    if (typeof end === "function") await end.call(this.primary);
  }

  /** Alias of {@link close}, matching the savers' `end()`. */
  async end(): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- routing

  /** A method, not a property read, so TypeScript does not keep a narrowing across awaits. */
  private isPrimary(): boolean {
    return this.outage.mode === "primary";
  }

  /**
   * Where a call about one thread goes now:
   *
   * | state                                   | thread with nothing logged | thread with logged operations |
   * | --------------------------------------- | -------------------------- | ----------------------------- |
   * | mode `primary`                          | Postgres                   | Postgres                      |
   * | mode `fallback`, Postgres unreachable   | memory (writes logged)     | memory (writes logged)        |
   * | mode `fallback`, replaying              | Postgres                   | reads: memory; writes: `wait` |
   *
   * While the log replays, a thread it holds nothing of is already whole in Postgres, so its
   * calls go there and the replay never chases its live writes: the log only shrinks. A write
   * of a thread that still has logged operations waits until the replay sent them (the replay
   * takes awaited threads first), then goes to Postgres, so every thread's writes reach Postgres
   * in acknowledgement order. A waiting call re-routes when the round ends, whatever its outcome.
   * `threadId` is read lazily: only the replaying state needs it, and an invalid id is memory's
   * (or Postgres') INVALID_INPUT to report.
   */
  private route(threadId: () => string | undefined, write: boolean): "primary" | "memory" | "wait" {
    if (this.outage.mode === "primary") return "primary";
    if (!this.replaying) return "memory";
    let id: string | undefined;
    try {
      id = threadId();
    } catch {
      return "memory";
    }
    if (id === undefined) return "memory";
    if (!this.store.hasPending(id)) return "primary";
    return write ? "wait" : "memory";
  }

  private isOutage(err: unknown): boolean {
    return isConnectionError(err);
  }

  /** One primary call: retried on connection errors, bounded by operationTimeoutMs. */
  private callPrimary<T>(op: () => Promise<T>): Promise<T> {
    const attempt = withRetry(op, this.retry);
    if (this.operationTimeoutMs <= 0) return attempt;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new ThreadlineError(
            "DB_UNAVAILABLE",
            `the database did not answer within ${this.operationTimeoutMs} ms (fallback.operationTimeout)`,
          ),
        );
      }, this.operationTimeoutMs);
      timer.unref();
      attempt.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /**
   * Handles a primary failure. Connection-level: with the fallback enabled, switch to fallback
   * mode and return (the caller serves from memory); disabled, throw DB_UNAVAILABLE. Anything
   * else is the caller's error and is rethrown unchanged.
   */
  private onPrimaryError(err: unknown, what: string): void {
    if (!this.isOutage(err)) throw err;
    if (!this.enabled) {
      this.outage.lastError = describe(err);
      throw toThreadlineError(err, what);
    }
    this.enterFallback(err, what);
  }

  private enterFallback(err: unknown, what: string): void {
    if (!this.enabled) throw toThreadlineError(err, what);
    if (this.outage.closed) throw toThreadlineError(err, what);
    if (!this.outage.enter(describe(err))) return;
    this.logger.warn(
      {
        err: { message: this.outage.lastError },
        operation: what,
        pending: this.store.pendingEntries,
      },
      "Postgres unreachable: serving checkpoints from memory until it returns (fallback mode)",
    );
    this.onModeChange?.("fallback", this.status());
  }

  private exitFallback(): void {
    const downMs = this.outage.exit();
    if (downMs === undefined) return;
    this.logger.info(
      { downMs, replayed: this.replayed, failed: this.failed },
      "Postgres reachable again: pending checkpoints replayed, back to primary mode",
    );
    this.onModeChange?.("primary", this.status());
  }

  /** One probe round of the outage state machine: probe, setup, replay. */
  private async probeAndReplay(): Promise<void> {
    if (this.outage.closed || this.outage.mode === "primary") return;
    try {
      await this.callPrimary(async () => {
        await this.runSetup();
        await this.probeFn();
      });
      this.replaying = true;
      await replayLog({
        store: this.store,
        primary: this.primary,
        call: (op) => this.callPrimary(op),
        isOutage: (err) => this.isOutage(err),
        concurrency: this.replayConcurrency,
        logger: this.logger,
        closed: () => this.outage.closed,
        onReplayed: (entries) => (this.replayed += entries),
        onFailed: (entries) => (this.failed += entries),
        describe,
      });
    } catch (err) {
      const attempt = this.outage.probeFailed(describe(err));
      this.logger.debug(
        { err: { message: this.outage.lastError }, attempt },
        "Postgres probe failed",
      );
      return;
    } finally {
      this.replaying = false;
      this.store.releaseWaiters();
    }
    // The log is empty (checked synchronously after the last await): writes from now on go to
    // the primary, and no acknowledged entry can be left behind in the log.
    if (this.store.logSize === 0) {
      this.store.forgetSharedElements();
      this.exitFallback();
    } else {
      this.outage.schedule(0);
    }
  }

  private async runSetup(): Promise<void> {
    if (this.setupDone || !this.setupFn) return;
    await this.setupFn();
    this.setupDone = true;
  }

  // ---------------------------------------------------------------- saver API

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    if (this.route(() => threadIdOf(config), false) === "primary") {
      try {
        const tuple = await this.callPrimary(() => this.primary.getTuple(config));
        const threadId = threadIdOf(config);
        // An outage began while this read was in flight and memory holds newer entries.
        if (threadId !== undefined && this.store.hasPending(threadId))
          return this.memoryGetTuple(config);
        if (tuple && this.enabled) await this.store.cacheTuple(tuple);
        return tuple;
      } catch (err) {
        this.onPrimaryError(err, "getTuple");
      }
    }
    return this.memoryGetTuple(config);
  }

  private async memoryGetTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = threadIdOf(config);
    if (threadId === undefined) return undefined;
    return this.store.getTuple(threadId, namespaceOf(config), threadIdOf(config, "checkpoint_id"));
  }

  override async *list(
    config: RunnableConfig,
    options?: CheckpointListOptions,
  ): AsyncGenerator<CheckpointTuple> {
    // Validated here too, so that memory answers bad input as Postgres does.
    asLimit(options?.limit);
    filterJson(options?.filter);
    const listedThread = () => threadIdOf(config);
    if (this.route(listedThread, false) === "primary") {
      let tuples: CheckpointTuple[] | undefined;
      try {
        tuples = await this.callPrimary(async () => {
          const out: CheckpointTuple[] = [];
          for await (const t of this.primary.list(config, options)) out.push(t);
          return out;
        });
      } catch (err) {
        this.onPrimaryError(err, "list");
      }
      // Re-read the mode: it may have changed while the list was in flight.
      if (tuples && (this.route(listedThread, false) === "primary" || this.store.logSize === 0)) {
        yield* tuples;
        return;
      }
    }
    const c = config.configurable ?? {};
    const threadId = threadIdOf(config);
    const checkpointId = threadIdOf(config, "checkpoint_id");
    yield* this.store.list(
      {
        ...(threadId !== undefined ? { threadId } : {}),
        ...(c.checkpoint_ns !== undefined && c.checkpoint_ns !== null
          ? { ns: namespaceOf(config) }
          : {}),
        ...(checkpointId !== undefined ? { checkpointId } : {}),
      },
      options,
    );
  }

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    let serialized: [PendingCheckpoint, Serialized] | undefined;
    const where = this.writeRouter(config);
    for (;;) {
      const route = where.now();
      if (route === "wait") {
        await this.store.whenReplayed(threadIdOf(config)!);
        continue;
      }
      if (route === "primary") {
        try {
          const result = await this.callPrimary(() =>
            this.primary.put(config, checkpoint, metadata, newVersions),
          );
          await this.afterPrimaryPut(config, checkpoint, metadata, newVersions);
          return result;
        } catch (err) {
          this.onPrimaryError(err, "put");
          where.failed();
        }
      }
      if (config.configurable === undefined) {
        throw new ThreadlineError(
          "INVALID_INPUT",
          'put: config is missing its "configurable" field',
        );
      }
      const threadId = requireId(config, "thread_id", "put");
      const ns = namespaceOf(config);
      asCheckpointId(checkpoint?.id, "put");
      if (!serialized) assertStorableCheckpoint(checkpoint, metadata, newVersions);
      serialized ??= await Promise.all([
        this.store.serializePending(threadId, ns, checkpoint),
        this.serde.dumpsTyped(metadata),
      ]);
      // The replay may have begun or finished while serializing: then this write is routed again.
      if (where.now() !== "memory") continue;
      this.store.putSerialized({
        threadId,
        ns,
        parentId: threadIdOf(config, "checkpoint_id"),
        checkpoint: serialized[0],
        metadata: serialized[1],
        newVersions,
        pending: true,
        source: checkpoint,
      });
      return {
        configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id },
      };
    }
  }

  /** Write-through cache of a put Postgres acknowledged (and a log entry if an outage began meanwhile). */
  private async afterPrimaryPut(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<void> {
    if (!this.enabled) return;
    const threadId = threadIdOf(config);
    if (threadId === undefined) return;
    const ns = namespaceOf(config);
    const parentId = threadIdOf(config, "checkpoint_id");
    // If an outage began meanwhile and this thread has logged operations (a delete, say), this
    // write must be replayed after them, not only live in Postgres already.
    const pending = !this.isPrimary() && this.store.hasPending(threadId);
    try {
      await this.store.putCheckpoint({
        threadId,
        ns,
        parentId,
        checkpoint,
        metadata,
        newVersions,
        pending,
      });
    } catch (err) {
      // The write is durable in Postgres: a full log only costs the ordering guarantee above.
      if (!pending) throw err;
      this.logger.warn(
        { err: { message: describe(err) }, threadId },
        "could not log a write acknowledged by Postgres",
      );
    }
  }

  override async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath?: string,
  ): Promise<void> {
    let serialized: Array<[string, Serialized]> | undefined;
    // The values' texts, made at the call for the cache and (when it takes them) the primary:
    // one encoding per value, and the cache holds what Postgres was sent (decision H49).
    let texts: string[] | undefined | null = null;
    const where = this.writeRouter(config);
    for (;;) {
      const route = where.now();
      if (route === "wait") {
        await this.store.whenReplayed(threadIdOf(config)!);
        continue;
      }
      if (route === "primary") {
        try {
          if (texts === null)
            texts = this.enabled ? this.store.encodeWriteTexts(writes) : undefined;
          const encoded = texts;
          await this.callPrimary(() =>
            encoded !== undefined && takesEncodedWrites(this.primary)
              ? this.primary[PUT_WRITES_ENCODED](config, writes, taskId, taskPath, encoded)
              : this.primary.putWrites(config, writes, taskId, taskPath),
          );
          if (this.enabled) await this.cacheWrites(config, writes, taskId, taskPath ?? "", encoded);
          return;
        } catch (err) {
          this.onPrimaryError(err, "putWrites");
          where.failed();
        }
      }
      const threadId = requireId(config, "thread_id", "putWrites");
      const ns = namespaceOf(config);
      const checkpointId = requireId(config, "checkpoint_id", "putWrites");
      if (typeof taskId !== "string" || taskId === "") {
        throw new ThreadlineError("INVALID_INPUT", "putWrites: taskId must be a non-empty string");
      }
      if (!serialized) for (const [, value] of writes) assertStorable(value, "putWrites", "value");
      serialized ??= await this.store.serializeWrites(writes);
      if (where.now() !== "memory") continue;
      this.store.putWritesSerialized({
        threadId,
        ns,
        checkpointId,
        taskId,
        taskPath: taskPath ?? "",
        writes: serialized,
        pending: true,
      });
      return;
    }
  }

  private async cacheWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath: string,
    texts: readonly string[] | undefined,
  ): Promise<void> {
    const threadId = threadIdOf(config);
    const checkpointId = threadIdOf(config, "checkpoint_id");
    if (threadId === undefined || checkpointId === undefined) return;
    const pending = !this.isPrimary() && this.store.hasPending(threadId);
    const serialized = texts
      ? writes.map(([channel], i): [string, Serialized] => [channel, ["json", texts[i]!]])
      : await this.store.serializeWrites(writes);
    try {
      this.store.putWritesSerialized({
        threadId,
        ns: namespaceOf(config),
        checkpointId,
        taskId,
        taskPath,
        writes: serialized,
        pending,
      });
    } catch (err) {
      if (!pending) throw err;
      this.logger.warn(
        { err: { message: describe(err) }, threadId },
        "could not log a write acknowledged by Postgres",
      );
    }
  }

  override async deleteThread(threadId: string): Promise<void> {
    const where = this.writeRouter({ configurable: { thread_id: threadId } });
    for (;;) {
      const route = where.now();
      if (route === "wait") {
        await this.store.whenReplayed(threadId);
        continue;
      }
      if (route !== "primary") break;
      const replayingBefore = this.replaying;
      try {
        await this.callPrimary(() => this.primary.deleteThread(threadId));
        // Postgres forgot the thread; so does the cache. If an outage began meanwhile (or the
        // thread has operations logged meanwhile), the delete is logged too, so it also follows
        // anything logged before it.
        const outageBegan = !this.isPrimary() && !(replayingBefore && this.replaying);
        this.store.deleteThread(threadId, outageBegan || this.store.hasPending(threadId));
        return;
      } catch (err) {
        this.onPrimaryError(err, "deleteThread");
        where.failed();
      }
    }
    this.store.deleteThread(asId(threadId, "thread_id", true), true);
  }

  /**
   * The route of one write call (see {@link route}), re-read at every step of its loop. Once
   * Postgres failed the call it is served from memory, unless the mode is `primary` again, so a
   * replaying round that has not noticed the outage yet cannot send it back and forth.
   */
  private writeRouter(config: RunnableConfig) {
    let failed = false;
    return {
      now: (): "primary" | "memory" | "wait" =>
        failed && !this.isPrimary() ? "memory" : this.route(() => threadIdOf(config), true),
      failed: () => {
        failed = true;
      },
    };
  }

  override async getDeltaChannelHistory(options: {
    config: RunnableConfig;
    channels: string[];
  }): Promise<Record<string, DeltaChannelHistory>> {
    if (this.route(() => threadIdOf(options.config), false) === "primary") {
      try {
        const result = await this.callPrimary(() => this.primary.getDeltaChannelHistory(options));
        const threadId = threadIdOf(options.config);
        if (threadId === undefined || !this.store.hasPending(threadId)) return result;
      } catch (err) {
        this.onPrimaryError(err, "getDeltaChannelHistory");
      }
    }
    // The base implementation walks getTuple + parentConfig, which now reads memory.
    return super.getDeltaChannelHistory(options);
  }

  override getNextVersion(current: number | undefined): number {
    // Versions must be the primary's: replayed checkpoints land in its storage.
    return this.primary.getNextVersion(current);
  }
}

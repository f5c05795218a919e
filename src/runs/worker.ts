import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import type { RunnableConfig } from "@langchain/core/runnables";
import { Command, type StateSnapshot } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { ThreadlineError } from "../errors.js";
import type { GraphRegistry } from "../graphs/load.js";
import type { Logger } from "../logger.js";
import type { RunNotifier } from "./notifier.js";
import {
  publicRun,
  TERMINAL,
  type CancelAction,
  type RunQueue,
  type RunRow,
  type StoredEvent,
} from "./queue.js";
import { interruptsOf, serialize, toJson } from "./serialize.js";
import { streamRun, type RunEvent, type StreamMode } from "./stream.js";
import { sendWebhook } from "./webhook.js";
import type { Json, RunStatus, ThreadStatus, ThreadStore } from "./threads.js";

/**
 * The run worker of one instance: claims pending runs from the queue in Postgres (any instance's),
 * up to `concurrency` at once, executes them, stores their events, and ends them.
 *
 * Per run: claimed (running, heartbeat) --graph ends--> finish(success | interrupted | error)
 *   --cancel_action seen (NOTIFY or heartbeat)--> graph aborted --> interrupt: finish(interrupted);
 *     rollback: the run's checkpoints and the run deleted
 *   --service shutdown past server.shutdownTimeout--> graph aborted --> finish(error, SHUTTING_DOWN)
 *   --heartbeat finds the run gone (reaped, deleted)--> graph aborted, nothing recorded.
 *
 * The worker also reaps runs of dead workers (heartbeat older than staleAfter) and sweeps events
 * past their retention, on the poll timer; both are safe from every instance at once.
 */

/** Settings of {@link RunWorker} (the `runs` section of the config). */
export interface RunWorkerSettings {
  /** Runs executed at once by this instance. */
  concurrency: number;
  /** Heartbeat period (ms). */
  heartbeatInterval: number;
  /** A heartbeat older than this (ms) marks the run's worker dead. */
  staleAfter: number;
  /** Claim poll period without notifications (ms). */
  pollInterval: number;
  /** Events of ended runs are kept this long (ms). */
  eventRetention: number;
}

/** What a run was created with, as stored in `kwargs`. */
export interface RunKwargs {
  input?: unknown;
  command?: { resume?: unknown; update?: unknown; goto?: unknown } | null;
  config?: {
    configurable?: Record<string, unknown> | null | undefined;
    tags?: string[] | null | undefined;
    recursion_limit?: number | null | undefined;
    metadata?: Record<string, unknown> | null | undefined;
  } | null;
  context?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
  stream_mode?: StreamMode[];
  stream_subgraphs?: boolean | null;
  stream_resumable?: boolean | null;
  checkpoint?: { checkpoint_id?: string | undefined; checkpoint_ns?: string | undefined } | null;
  checkpoint_id?: string | null;
  interrupt_before?: "*" | string[] | null;
  interrupt_after?: "*" | string[] | null;
  durability?: "sync" | "async" | "exit" | null;
  /** A stateless run whose thread is deleted when it ends. */
  temporary?: boolean;
  /** URL that receives the ended run as a POST (see webhook.ts). */
  webhook?: string | null;
}

/** An execution registered with the service's shutdown (see `ServiceState.streams`). */
export interface TrackedExecution {
  abort(): void;
  readonly done: Promise<void>;
}

/** What {@link RunWorker} needs. */
export interface RunWorkerDeps {
  queue: RunQueue;
  notifier: RunNotifier;
  threads: ThreadStore;
  graphs: GraphRegistry;
  checkpointer: BaseCheckpointSaver;
  logger: Logger;
  settings: RunWorkerSettings;
  /** True once the service drains: no more claims. */
  draining(): boolean;
  /** Registers an execution with the shutdown; returns the function that unregisters it. */
  track(execution: TrackedExecution): () => void;
  /** The `error` event of a failed run (`{ error, message }`). */
  errorEvent(err: unknown): { error: string; message: string };
  /** Called once per run that ends here (metrics). */
  onRunEnd?(graph: string, outcome: string, seconds: number): void;
  /** Log form of an error. */
  describeError(err: unknown): Record<string, unknown>;
}

/** A run that ended here stays readable from memory this long (ms). */
const LOCAL_KEEP_MS = 10_000;

/** Events are flushed to Postgres at least this often while a run produces them (ms). */
const FLUSH_MS = 15;

/**
 * No event is flushed before the run has gone on this long (ms): a shorter run stores all of
 * its events with its end, in that statement, so its end does not wait for a flush's commit
 * (decision H41). Streams of this instance read events from memory; another instance's stream
 * sees a run's first events at most this late.
 */
const FIRST_FLUSH_MS = 100;

class Aborted extends Error {
  constructor(
    readonly why: "cancel" | "shutdown" | "lost",
    readonly action?: CancelAction,
  ) {
    super(why === "cancel" ? "run cancelled" : why === "shutdown" ? "shutting down" : "run lost");
  }
}

/** How a run ended here, for the waiters of this process (`runs.wait` of a temporary thread). */
export interface LocalEnd {
  status: RunStatus;
  /** The thread's values after the run as JSON text (`null` when unknown). */
  valuesText: string;
  interrupts: Record<string, Json>;
  error?: Json;
}

/**
 * Buffers a run's events and writes them in order, batched, while the run goes on; keeps them
 * in memory too while it runs, so streams of this process read them without a round trip.
 */
class EventWriter {
  private seq = 0;
  readonly history: StoredEvent[] = [];
  private readonly emitter = new EventEmitter();
  ended = false;
  private buffer: Array<{ event: string; data: string }> = [];
  private first = 0;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  failed: unknown;
  /** Set by {@link take}: the rest goes with the run's end, no more timed flushes. */
  private closed = false;
  private readonly startedAt = performance.now();

  constructor(
    private readonly queue: RunQueue,
    private readonly notifier: RunNotifier,
    private readonly threadId: string,
    private readonly runId: string,
  ) {}

  /** Adds an event; returns its data as stored (JSON text). */
  push(event: RunEvent): string {
    const data = serialize(event.data);
    this.buffer.push({ event: event.event, data });
    this.history.push({ seq: this.seq, event: event.event, data });
    this.seq += 1;
    this.emitter.emit("more");
    if (!this.writing && !this.timer && !this.closed) {
      const wait = Math.max(FLUSH_MS, FIRST_FLUSH_MS - (performance.now() - this.startedAt));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, wait);
    }
    return data;
  }

  /** No more events: local readers end after the last one. */
  end(): void {
    this.ended = true;
    this.emitter.emit("more");
  }

  /** The events after `afterSeq`, from memory, until {@link end}. */
  async *tail(afterSeq: number, signal: AbortSignal): AsyncGenerator<StoredEvent> {
    this.emitter.setMaxListeners(0);
    let i = Math.max(0, afterSeq + 1);
    for (;;) {
      while (i < this.history.length) yield this.history[i++]!;
      if (this.ended || signal.aborted) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.emitter.off("more", done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.emitter.on("more", done);
        signal.addEventListener("abort", done);
      });
    }
  }

  /**
   * The events not yet written and their first seq, for the statement that ends the run
   * ({@link RunQueue.finish}); waits for a write in flight first, so seqs stay in order and
   * nothing is written after them.
   */
  async take(): Promise<{ firstSeq: number; rows: Array<{ event: string; data: string }> }> {
    while (this.writing) await this.writing;
    clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.buffer;
    const firstSeq = this.first;
    this.buffer = [];
    this.first += rows.length;
    this.closed = true;
    return { firstSeq, rows };
  }

  /** Writes everything buffered so far (waits for a write in flight first). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    const first = this.first;
    this.buffer = [];
    this.first += batch.length;
    this.writing = (async () => {
      try {
        await this.queue.appendEvents(this.threadId, this.runId, first, batch);
        this.notifier.deliver({
          schema: this.queue.schema,
          kind: "e",
          thread_id: this.threadId,
          run_id: this.runId,
        });
      } catch (err) {
        this.failed ??= err;
      } finally {
        this.writing = undefined;
      }
    })();
    await this.writing;
    if (this.buffer.length > 0 && !this.timer && !this.closed) void this.flush();
  }
}

/** See the module header. */
export class RunWorker {
  /** This instance's id in `agent_runs.worker_id`. */
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly executing = new Map<string, AbortController>();
  private readonly local = new Map<string, { writer: EventWriter; end: Promise<LocalEnd> }>();
  private timer: NodeJS.Timeout | undefined;
  private claiming = false;
  private again = false;
  private stopped = false;
  private readonly unsubscribe: Array<() => void> = [];
  private lastMaintenance = 0;
  /**
   * A scan stopped at the concurrency limit (or was skipped there), so runs may wait that this
   * worker did not claim: the next run to end here scans again. Otherwise a run's end scans
   * only when its thread has pending runs (the `x` notice says so), not after every run.
   */
  private owed = false;

  constructor(private readonly deps: RunWorkerDeps) {}

  /** Runs this instance executes now. */
  get active(): number {
    return this.executing.size;
  }

  /**
   * A run executing in this process (or ended here within the last seconds): its events from
   * memory and how it ended. Undefined for runs of other instances.
   */
  localRun(runId: string):
    | {
        tail(afterSeq: number, signal: AbortSignal): AsyncGenerator<StoredEvent>;
        end: Promise<LocalEnd>;
      }
    | undefined {
    const found = this.local.get(runId);
    if (!found) return undefined;
    return { tail: (after, signal) => found.writer.tail(after, signal), end: found.end };
  }

  /** Starts claiming: on notifications and every pollInterval. */
  start(): void {
    const { notifier, settings } = this.deps;
    this.unsubscribe.push(
      notifier.on("q", () => this.kick()),
      notifier.on("x", (n) => {
        if (n.pending !== false) this.kick();
      }),
      notifier.on("c", (n) => {
        if (n.run_id) void this.checkCancel(n.thread_id ?? "", n.run_id);
      }),
    );
    this.timer = setInterval(() => {
      this.kick();
      void this.maintain();
    }, settings.pollInterval);
    this.timer.unref();
    this.kick();
  }

  /** Stops claiming (running runs go on; the shutdown waits for them, then aborts them). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** Claims and starts runs while below the concurrency limit. */
  kick(): void {
    if (this.claiming) {
      this.again = true;
      return;
    }
    if (!this.canClaim()) {
      this.owed = !this.stopped && !this.deps.draining();
      return;
    }
    this.claiming = true;
    void (async () => {
      try {
        do {
          this.again = false;
          this.owed = false;
          while (this.canClaim()) {
            const run = await this.deps.queue.claim(this.workerId, this.deps.settings.staleAfter);
            if (!run) break;
            this.begin(run);
          }
          if (!this.canClaim()) this.owed = !this.stopped && !this.deps.draining();
        } while (this.again && this.canClaim());
      } catch (err) {
        this.deps.logger.warn({ err: this.deps.describeError(err) }, "claiming runs failed");
      } finally {
        this.claiming = false;
      }
    })();
  }

  private canClaim(): boolean {
    return (
      !this.stopped && !this.deps.draining() && this.executing.size < this.deps.settings.concurrency
    );
  }

  /**
   * The claim to ask {@link RunQueue.create} for, for a run this process wants to execute at
   * once (a streamed or waited run it received); undefined when this instance is full (unless
   * `force`) or draining.
   */
  claimFor(force = false): { workerId: string; staleAfterMs: number } | undefined {
    return this.canClaim() || (force && !this.stopped && !this.deps.draining())
      ? { workerId: this.workerId, staleAfterMs: this.deps.settings.staleAfter }
      : undefined;
  }

  /**
   * Executes a run {@link RunQueue.create} claimed for this worker; `base` is its rollback base
   * when the create read it (decision H28), else the executor reads it.
   */
  adopt(run: RunRow, base?: string | null): void {
    this.begin(run, base);
  }

  private async maintain(): Promise<void> {
    const { queue, settings, logger } = this.deps;
    const now = Date.now();
    if (now - this.lastMaintenance < Math.min(settings.staleAfter / 3, 5_000)) return;
    this.lastMaintenance = now;
    try {
      const dead = await queue.reap(settings.staleAfter);
      for (const r of dead)
        logger.warn(
          { threadId: r.thread_id, runId: r.run_id },
          "run of a dead worker marked error",
        );
      await queue.purgeEvents(settings.eventRetention);
    } catch (err) {
      logger.warn({ err: this.deps.describeError(err) }, "run maintenance failed");
    }
  }

  private async checkCancel(threadId: string, runId: string): Promise<void> {
    const controller = this.executing.get(runId);
    if (!controller) return;
    try {
      const run = await this.deps.queue.get(threadId, runId);
      if (run?.cancel_action) controller.abort(new Aborted("cancel", run.cancel_action));
    } catch (err) {
      this.deps.logger.warn(
        { err: this.deps.describeError(err), runId },
        "reading a cancel failed",
      );
    }
  }

  private begin(run: RunRow, base?: string | null): void {
    const controller = new AbortController();
    this.executing.set(run.run_id, controller);
    const writer = new EventWriter(this.deps.queue, this.deps.notifier, run.thread_id, run.run_id);
    let settle!: (end: LocalEnd) => void;
    const end = new Promise<LocalEnd>((r) => (settle = r));
    this.local.set(run.run_id, { writer, end });
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const untrack = this.deps.track({
      abort: () => controller.abort(new Aborted("shutdown")),
      done,
    });
    void this.execute(run, controller, writer, base)
      .then(settle, (err: unknown) => {
        this.deps.logger.error(
          { err: this.deps.describeError(err), runId: run.run_id },
          "executing a run failed",
        );
        settle({
          status: "error",
          valuesText: "null",
          interrupts: {},
          error: toJson(this.deps.errorEvent(err)),
        });
      })
      .finally(() => {
        writer.end();
        // Late local readers (a wait that asked just now) still find it for a moment.
        setTimeout(() => this.local.delete(run.run_id), LOCAL_KEEP_MS).unref();
        this.executing.delete(run.run_id);
        untrack();
        resolve();
        if (this.owed) this.kick();
      });
  }

  private async execute(
    run: RunRow,
    controller: AbortController,
    events: EventWriter,
    knownBase: string | null | undefined,
  ): Promise<LocalEnd> {
    const { queue, threads, logger, settings } = this.deps;
    const threadId = run.thread_id;
    const runId = run.run_id;
    const kwargs = run.kwargs as RunKwargs;
    const started = process.hrtime.bigint();
    const loaded = this.deps.graphs.find(run.assistant_id);
    const heartbeat = setInterval(() => {
      queue
        .heartbeat(threadId, runId, this.workerId, settings.staleAfter)
        .then((cancel) => {
          if (cancel === "lost") controller.abort(new Aborted("lost"));
          else if (cancel) controller.abort(new Aborted("cancel", cancel));
        })
        .catch((err: unknown) =>
          logger.warn({ err: this.deps.describeError(err), runId }, "run heartbeat failed"),
        );
    }, settings.heartbeatInterval);
    heartbeat.unref();

    // A cancel that arrived between the claim and now.
    if (run.cancel_action) controller.abort(new Aborted("cancel", run.cancel_action));

    const checkpointId = kwargs.checkpoint?.checkpoint_id ?? kwargs.checkpoint_id ?? undefined;
    const config: RunnableConfig = {
      configurable: {
        ...(kwargs.config?.configurable ?? {}),
        thread_id: threadId,
        ...(checkpointId !== undefined ? { checkpoint_id: checkpointId } : {}),
        ...(kwargs.checkpoint?.checkpoint_ns !== undefined
          ? { checkpoint_ns: kwargs.checkpoint.checkpoint_ns }
          : {}),
      },
      metadata: {
        ...(kwargs.config?.metadata ?? {}),
        ...(kwargs.metadata ?? {}),
        run_id: runId,
        thread_id: threadId,
        graph_id: loaded?.name ?? null,
        assistant_id: run.assistant_id,
      },
      ...(kwargs.config?.tags ? { tags: kwargs.config.tags } : {}),
      ...(kwargs.config?.recursion_limit ? { recursionLimit: kwargs.config.recursion_limit } : {}),
    };
    let outcome: "success" | "interrupted" | "error" | "cancelled" = "success";
    let error: unknown;
    let graph;
    let base: string | null = knownBase ?? null;
    // The root graph's last values chunk: the run's final state when it ends without an
    // interrupt (decision H41); `text` once it was serialized as a `values` event.
    let final: { payload: unknown; text?: string } | undefined;
    let interrupted = false;
    try {
      // What a rollback returns to: everything newer than this is the run's.
      if (knownBase === undefined) base = await queue.latestCheckpointId(threadId);
      if (!loaded)
        throw new ThreadlineError("NOT_FOUND", `assistant ${run.assistant_id} not found`);
      graph = await loaded.resolve(config);
      const command = kwargs.command;
      const input = command
        ? new Command({
            ...(command.resume !== undefined ? { resume: command.resume } : {}),
            ...(command.update !== undefined
              ? { update: command.update as Record<string, unknown> }
              : {}),
            ...(command.goto !== undefined ? { goto: command.goto as string } : {}),
          })
        : (kwargs.input ?? null);
      for await (const event of streamRun({
        graph,
        input,
        config,
        streamMode: kwargs.stream_mode ?? ["values"],
        subgraphs: kwargs.stream_subgraphs === true,
        runId,
        signal: controller.signal,
        onValues: (payload, interrupt) => {
          if (interrupt) interrupted = true;
          else final = { payload };
        },
        ...(kwargs.context ? { context: kwargs.context } : {}),
        ...(kwargs.interrupt_before ? { interruptBefore: kwargs.interrupt_before } : {}),
        ...(kwargs.interrupt_after ? { interruptAfter: kwargs.interrupt_after } : {}),
        ...(kwargs.durability ? { durability: kwargs.durability } : {}),
      })) {
        if (controller.signal.aborted) break;
        const text = events.push(event);
        if (final && event.data === final.payload) final.text = text;
      }
      if (controller.signal.aborted) throw controller.signal.reason;
    } catch (err) {
      outcome = controller.signal.aborted ? "cancelled" : "error";
      error = controller.signal.aborted ? controller.signal.reason : err;
    } finally {
      clearInterval(heartbeat);
    }
    const why = error instanceof Aborted ? error : undefined;
    if (why?.why === "lost") {
      // Reaped or deleted meanwhile: another instance already recorded its end.
      await events.flush();
      logger.warn({ threadId, runId }, "run no longer ours (reaped or deleted); stopped");
      return { status: "error", valuesText: "null", interrupts: {} };
    }
    const rollback = why?.why === "cancel" && why.action === "rollback";
    if (rollback) {
      try {
        await queue.deleteCheckpointsAfter(threadId, base);
      } catch (err) {
        logger.warn({ err: this.deps.describeError(err), runId }, "rolling back a run failed");
      }
    }

    // A run that completed without an interrupt ends in the state of its last values chunk, the
    // same channels `getState` reads (LangGraph streams `streamChannelsAsIs` in both); any other
    // end reads the state back for its values, tasks and interrupts.
    const settled = outcome === "success" && !interrupted ? final : undefined;
    let snapshot: StateSnapshot | undefined;
    try {
      snapshot =
        graph && !settled
          ? await graph.getState({ configurable: { thread_id: threadId } })
          : undefined;
    } catch (err) {
      logger.warn(
        { err: this.deps.describeError(err), threadId },
        "reading the state after a run failed",
      );
    }
    const interrupts = snapshot ? interruptsOf(snapshot) : {};
    if (outcome === "success" && Object.keys(interrupts).length > 0) outcome = "interrupted";
    const shutdown = why?.why === "shutdown";
    const failed = outcome === "error" || shutdown;
    let shown: { error: string; message: string } | undefined;
    if (why?.why === "cancel") shown = { error: "UserInterrupt", message: "the run was cancelled" };
    else if (shutdown)
      shown = this.deps.errorEvent(
        new ThreadlineError(
          "SHUTTING_DOWN",
          "the service shut down (server.shutdownTimeout) before the run ended",
        ),
      );
    else if (failed) shown = this.deps.errorEvent(error);
    if (shown) events.push({ event: "error", data: shown });
    // The events not yet stored go with the end, in its statement (decision H30).
    const last = await events.take();
    const threadStatus: Exclude<ThreadStatus, "busy"> = failed
      ? "error"
      : outcome === "interrupted"
        ? "interrupted"
        : "idle";
    const runStatus = failed ? "error" : outcome === "cancelled" ? "interrupted" : "success";
    const result: LocalEnd = {
      status: runStatus,
      valuesText: settled
        ? (settled.text ?? serialize(settled.payload))
        : snapshot
          ? serialize(snapshot.values)
          : "null",
      interrupts: interrupts,
      ...(failed && shown ? { error: shown } : {}),
    };
    try {
      const { ours, pending } = await queue.finish(
        threadId,
        runId,
        this.workerId,
        { ...result, status: runStatus, threadStatus },
        rollback,
        last,
      );
      // Reaped meanwhile: the events still go where join and resume read them.
      if (!ours && !rollback)
        await queue.appendEvents(threadId, runId, last.firstSeq, last.rows).catch(() => undefined);
      this.deps.notifier.deliver({
        schema: queue.schema,
        kind: "x",
        thread_id: threadId,
        run_id: runId,
        pending,
      });
      if (ours && kwargs.webhook) {
        const endedAt = new Date().toISOString();
        void sendWebhook(
          kwargs.webhook,
          {
            ...publicRun(run),
            status: runStatus,
            updated_at: endedAt,
            run_started_at: run.started_at,
            run_ended_at: endedAt,
            values: JSON.parse(result.valuesText) as Json,
            ...(result.error !== undefined ? { error: result.error } : {}),
          },
          logger,
        );
      }
      if (ours && kwargs.temporary) {
        await threads.delete(threadId);
        await this.deps.checkpointer.deleteThread(threadId);
      }
    } catch (err) {
      logger.warn(
        { err: this.deps.describeError(err), threadId },
        "recording the end of a run failed",
      );
    }
    if (outcome === "error")
      logger.warn({ err: this.deps.describeError(error), threadId, runId }, "run failed");
    this.deps.onRunEnd?.(
      loaded?.name ?? "unknown",
      shutdown ? "error" : outcome,
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    return result;
  }
}

/** Options of {@link tailRun}. */
export interface TailOptions {
  queue: RunQueue;
  notifier: RunNotifier;
  threadId: string;
  runId: string;
  /** Yield events after this seq (-1: from the first). */
  afterSeq: number;
  signal: AbortSignal;
  /** Re-read without a notification this often (ms). */
  pollMs?: number;
}

/**
 * The events of a run from Postgres, in order, from `afterSeq + 1` until the run has ended and
 * every event was read (or `signal` aborts). Woken by notifications, polling as a safety net.
 */
export async function* tailRun(options: TailOptions): AsyncGenerator<StoredEvent> {
  const { queue, notifier, threadId, runId, signal } = options;
  let after = options.afterSeq;
  while (!signal.aborted) {
    const wake = notifier.next(`run:${runId}`, options.pollMs ?? 1_000, signal);
    const rows = await queue.readEvents(threadId, runId, after);
    if (rows.length > 0) {
      wake.cancel();
      for (const row of rows) {
        yield row;
        after = row.seq;
      }
      continue;
    }
    const run = await queue.get(threadId, runId);
    if (!run || TERMINAL.has(run.status)) {
      wake.cancel();
      // Every event was stored before the run ended: read what is left, then stop.
      for (;;) {
        const rest = await queue.readEvents(threadId, runId, after);
        if (rest.length === 0) return;
        for (const row of rest) {
          yield row;
          after = row.seq;
        }
      }
    }
    await wake.promise;
  }
}

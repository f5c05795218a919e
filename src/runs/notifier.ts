import { EventEmitter } from "node:events";
import type pg from "pg";
import type { Logger } from "../logger.js";
import { RUNS_CHANNEL, type RunNotice } from "./queue.js";

/**
 * Wakes the workers and the streams of this process when something happens to a run anywhere:
 * `LISTEN threadline_runs` on one connection of the session pool (`database.directUrl`, so it
 * works behind a transaction-mode pooler), plus the notices this process raises itself, which it
 * delivers at once without the round trip. Notifications are only wake-ups: every reader then
 * reads the tables, and polls on a timer as well, so a lost notification (a dropped LISTEN
 * connection, the embedded database that has no spare connection) only adds latency.
 *
 * States: stopped --start--> listening (or local-only) --connection lost--> reconnecting (1 s)
 * --> listening; any --stop--> stopped.
 */
export class RunNotifier {
  private readonly emitter = new EventEmitter();
  private client: pg.PoolClient | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: pg.Pool | undefined,
    private readonly schema: string,
    private readonly logger: Logger,
  ) {
    this.emitter.setMaxListeners(0);
  }

  /** Starts listening (no-op without a session pool). */
  async start(): Promise<void> {
    if (!this.pool || this.stopped) return;
    try {
      const client = await this.pool.connect();
      if (this.stopped) {
        client.release();
        return;
      }
      client.on("notification", (msg) => {
        if (msg.channel !== RUNS_CHANNEL || !msg.payload) return;
        try {
          const notice = JSON.parse(msg.payload) as RunNotice;
          if (notice.schema === this.schema) this.deliver(notice);
        } catch {
          // Not ours.
        }
      });
      client.on("error", (err) => this.lost(err));
      await client.query(`LISTEN ${RUNS_CHANNEL}`);
      this.client = client;
    } catch (err) {
      this.lost(err);
    }
  }

  private lost(err: unknown): void {
    const client = this.client;
    this.client = undefined;
    client?.release(true);
    if (this.stopped) return;
    this.logger.warn(
      { err: { message: (err as Error).message } },
      "LISTEN for run notifications failed; polling until it reconnects",
    );
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.start(), 1_000);
    this.retry.unref();
  }

  /** Delivers a notice raised in this process to its own listeners right away. */
  deliver(notice: RunNotice): void {
    this.emitter.emit(notice.kind, notice);
    if (notice.run_id) this.emitter.emit(`run:${notice.run_id}`, notice);
    if (notice.thread_id) this.emitter.emit(`thread:${notice.thread_id}`, notice);
  }

  /** Calls `listener` on every notice of `kind`; returns the unsubscribe function. */
  on(kind: RunNotice["kind"], listener: (notice: RunNotice) => void): () => void {
    this.emitter.on(kind, listener);
    return () => this.emitter.off(kind, listener);
  }

  /**
   * A promise that resolves on the next notice about `key` (`run:<id>` or `thread:<id>`), after
   * `timeoutMs`, or when `signal` aborts; subscribe before reading the table, so nothing slips
   * between the read and the wait.
   */
  next(
    key: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): { promise: Promise<void>; cancel(): void } {
    let done!: () => void;
    const promise = new Promise<void>((resolve) => (done = resolve));
    const timer = setTimeout(() => finish(), timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      this.emitter.off(key, finish);
      signal?.removeEventListener("abort", finish);
      done();
    };
    this.emitter.on(key, finish);
    signal?.addEventListener("abort", finish);
    return { promise, cancel: finish };
  }

  /** Stops listening and releases the connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    if (client) {
      await client.query(`UNLISTEN ${RUNS_CHANNEL}`).catch(() => undefined);
      client.release();
    }
    this.emitter.removeAllListeners();
  }
}

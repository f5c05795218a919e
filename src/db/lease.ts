import type pg from "pg";
import { isConnectionError } from "./errors.js";
import { connectGuarded, type GuardedClient } from "./pool.js";
import { queryTextRows, type TextRow } from "./text-rows-query.js";

/**
 * Runs queries on pooled clients that it keeps checked out while they are in use and for the
 * rest of the current event-loop turn.
 *
 * Why: `pool.query()` reaches its connection through `process.nextTick`, and a tick scheduled
 * from a promise job only runs once the whole promise queue has drained. LangGraph runs a step
 * as one long chain of promise jobs, so a checkpoint saved mid-step would not even be sent
 * before the step ended, and its round trip (with the commit's WAL flush) would come on top of
 * the step instead of overlapping it. A client this lease already holds sends synchronously.
 *
 * Clients go back to the pool once the event loop is idle (setImmediate), so the lease holds no
 * more connections than were in use at once, and only briefly. A client whose connection failed
 * is handed back with the error, which makes the pool discard it.
 */
export class ClientLease {
  private readonly idle: pg.PoolClient[] = [];
  private readonly clients = new Map<pg.PoolClient, GuardedClient>();
  private returnScheduled: NodeJS.Immediate | undefined;

  constructor(private readonly pool: pg.Pool) {}

  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    return this.on((client) => client.query<R>(config));
  }

  /** One statement whose rows come back as column texts ({@link queryTextRows}). */
  queryText(name: string | undefined, text: string, values: unknown[]): Promise<TextRow[]> {
    return this.on((client) => queryTextRows(client, name, text, values));
  }

  private async on<T>(run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = this.idle.pop() ?? (await this.acquire());
    try {
      const result = await run(client);
      this.keep(client);
      return result;
    } catch (err) {
      if (isConnectionError(err)) this.discard(client, err);
      else this.keep(client);
      throw err;
    }
  }

  /** Clients held right now (idle ones included). */
  get held(): number {
    return this.clients.size;
  }

  private async acquire(): Promise<pg.PoolClient> {
    // A checked-out client has no listener of the pool's: without one, a connection terminated
    // while this lease holds it (idle or not yet used) would be an uncaught 'error' event.
    const seen: { early?: Error; ready?: boolean } = {};
    const guarded = await connectGuarded(this.pool, (err) => {
      if (seen.ready) this.discard(guarded.client, err);
      else seen.early = err;
    });
    const client = guarded.client;
    this.clients.set(client, guarded);
    seen.ready = true;
    // Terminated between ReadyForQuery and now: hand it back broken; the query on it then fails
    // with a connection error, which the caller's retry absorbs.
    if (seen.early) this.discard(client, seen.early);
    return client;
  }

  private keep(client: pg.PoolClient): void {
    if (!this.clients.has(client)) return;
    this.idle.push(client);
    this.returnScheduled ??= setImmediate(() => {
      this.returnScheduled = undefined;
      for (const c of this.idle.splice(0)) this.giveBack(c);
    });
  }

  private discard(client: pg.PoolClient, err: unknown): void {
    const at = this.idle.indexOf(client);
    if (at >= 0) this.idle.splice(at, 1);
    this.giveBack(client, err instanceof Error ? err : new Error(String(err)));
  }

  private giveBack(client: pg.PoolClient, err?: Error): void {
    const guarded = this.clients.get(client);
    if (!guarded) return;
    this.clients.delete(client);
    guarded.release(err);
  }
}

import { timingSafeEqual } from "node:crypto";
import type pg from "pg";
import { quoteSchema } from "../db/identifier.js";
import { isConnectionError, toThreadlineError } from "../db/errors.js";

/** Options of {@link ThreadOwners}. */
export interface ThreadOwnersOptions {
  /** Schema holding `thread_owners` (migration 0006). Default `public`. */
  schema?: string;
  /** Thread -> owner entries remembered in memory. Default 10 000. */
  cacheSize?: number;
}

/**
 * Which API key owns each thread, kept in `<schema>.thread_owners` (key sha256, never the key).
 *
 * Postgres is asked on every request (a primary-key lookup): a thread deleted and re-created
 * through another instance changes owner, so a cache could hand the old key the new owner's
 * thread. A bounded in-memory copy is used only when Postgres is unreachable, so that known
 * threads stay usable while the checkpointer runs on its fallback; an unknown thread then fails
 * closed (503).
 */
export class ThreadOwners {
  private readonly table: string;
  private readonly cacheSize: number;
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly pool: pg.Pool,
    options: ThreadOwnersOptions = {},
  ) {
    this.table = `${quoteSchema(options.schema ?? "public")}.thread_owners`;
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  /**
   * Claims `threadId` for `keyHash` if nobody owns it yet. Returns true when the thread belongs
   * to `keyHash` afterwards (new or already), false when another key owns it.
   */
  async claim(threadId: string, keyHash: string): Promise<boolean> {
    let owner: string | undefined;
    try {
      // Insert-or-read in one statement; with two racing claims the loser reads the winner's row.
      const { rows } = await this.pool.query<{ key_hash: string }>(
        `WITH ins AS (
           INSERT INTO ${this.table} (thread_id, key_hash) VALUES ($1, $2)
           ON CONFLICT (thread_id) DO NOTHING RETURNING key_hash
         )
         SELECT key_hash FROM ins
         UNION ALL
         SELECT key_hash FROM ${this.table} WHERE thread_id = $1
         LIMIT 1`,
        [threadId, keyHash],
      );
      owner = rows[0]?.key_hash;
    } catch (err) {
      const cached = this.staleOwner(threadId, err);
      if (cached !== undefined) return sameHash(cached, keyHash);
      throw toThreadlineError(err, "recording the thread owner");
    }
    if (owner === undefined) return false;
    this.remember(threadId, owner);
    return sameHash(owner, keyHash);
  }

  /** True when `keyHash` owns `threadId`; false for another key's or an unowned thread. */
  async isOwner(threadId: string, keyHash: string): Promise<boolean> {
    const owner = await this.ownerOf(threadId);
    return owner !== undefined && sameHash(owner, keyHash);
  }

  /** The owner's key hash, or undefined for a thread nobody claimed. */
  async ownerOf(threadId: string): Promise<string | undefined> {
    try {
      const { rows } = await this.pool.query<{ key_hash: string }>(
        `SELECT key_hash FROM ${this.table} WHERE thread_id = $1`,
        [threadId],
      );
      const owner = rows[0]?.key_hash;
      if (owner !== undefined) this.remember(threadId, owner);
      return owner;
    } catch (err) {
      const cached = this.staleOwner(threadId, err);
      if (cached !== undefined) return cached;
      throw toThreadlineError(err, "reading the thread owner");
    }
  }

  /** Forgets a deleted thread, so its id can be claimed again. */
  async release(threadId: string): Promise<void> {
    this.cache.delete(threadId);
    try {
      await this.pool.query(`DELETE FROM ${this.table} WHERE thread_id = $1`, [threadId]);
    } catch (err) {
      throw toThreadlineError(err, "deleting the thread owner");
    }
  }

  /** The remembered owner, only when the failure is Postgres being unreachable. */
  private staleOwner(threadId: string, err: unknown): string | undefined {
    return isConnectionError(err) ? this.cache.get(threadId) : undefined;
  }

  private remember(threadId: string, owner: string): void {
    this.cache.delete(threadId);
    if (this.cache.size >= this.cacheSize) {
      // Map iteration order is insertion order: drop the oldest entry.
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(threadId, owner);
  }
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

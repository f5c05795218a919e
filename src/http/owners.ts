import { timingSafeEqual } from "node:crypto";
import type pg from "pg";
import { quoteSchema } from "../db/identifier.js";
import { isConnectionError, toThreadlineError } from "../db/errors.js";

/** Owner rows of threads being deleted hold this prefix + the key hash: it matches no key. */
const TOMBSTONE_PREFIX = "deleting:";

/**
 * A tombstone left by a process that died while deleting can be taken over by its key after this
 * long (no live delete takes that long; a younger one may still be running).
 */
export const TOMBSTONE_TAKEOVER_SECONDS = 60;

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

  /**
   * Deletes `threadId` if, and only if, `keyHash` owns it: returns false (nothing deleted) for an
   * unknown id, another key's thread, or a thread another request of this key is deleting right
   * now, so the caller can answer all of these the same way.
   *
   * Every ownership change is one conditional statement. The owner row is first turned into a
   * tombstone (`deleting:<hash>`) that matches no key, so while `remove` deletes the checkpoints
   * no other key can claim the id and no second delete can start; the tombstone goes with the
   * thread (the `checkpoint_threads` trigger of migration 0006 deletes owner rows in the same
   * transaction as the checkpoints) or by the final conditional DELETE. One transaction around
   * everything would hold a connection while the checkpointer needs another from the same pool:
   * with a pool of one (the embedded database) or a burst of deletes, that waits for itself.
   *
   * @param remove deletes the thread's checkpoints (the checkpointer's `deleteThread`). When it
   *   fails, the owner row is restored and the error rethrown; if the process dies in between,
   *   the tombstone can be taken over by the same key after {@link TOMBSTONE_TAKEOVER_SECONDS}.
   */
  async deleteOwned(
    threadId: string,
    keyHash: string,
    remove: () => Promise<void>,
  ): Promise<boolean> {
    const tombstone = `${TOMBSTONE_PREFIX}${keyHash}`;
    this.cache.delete(threadId);
    let marked: boolean;
    try {
      // created_at records when the row last changed hands, which dates a tombstone.
      const { rowCount } = await this.pool.query(
        `UPDATE ${this.table} SET key_hash = $3, created_at = now()
          WHERE thread_id = $1
            AND (key_hash = $2
                 OR (key_hash = $3
                     AND created_at < now() - make_interval(secs => ${TOMBSTONE_TAKEOVER_SECONDS})))`,
        [threadId, keyHash, tombstone],
      );
      marked = rowCount === 1;
    } catch (err) {
      throw toThreadlineError(err, "marking the thread for deletion");
    }
    if (!marked) return false;
    try {
      await remove();
    } catch (err) {
      await this.pool
        .query(`UPDATE ${this.table} SET key_hash = $2 WHERE thread_id = $1 AND key_hash = $3`, [
          threadId,
          keyHash,
          tombstone,
        ])
        .catch(() => undefined);
      throw err;
    }
    try {
      await this.pool.query(`DELETE FROM ${this.table} WHERE thread_id = $1 AND key_hash = $2`, [
        threadId,
        tombstone,
      ]);
    } catch (err) {
      throw toThreadlineError(err, "deleting the thread owner");
    }
    this.cache.delete(threadId);
    return true;
  }

  /**
   * Forgets a thread's owner whoever it is.
   *
   * @deprecated Unconditional: between a caller's ownership check and this call another key may
   * have claimed the id, and would lose its thread. Use {@link deleteOwned}.
   */
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

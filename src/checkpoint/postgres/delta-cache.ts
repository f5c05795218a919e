import { estimateItemsBytes } from "../size.js";

/**
 * What this process last stored (or loaded) for an array channel of a thread: the version, the
 * element objects, and the identity (xmin) of the blob row holding that version. A later put
 * whose array starts with the same element objects is stored as a delta (only the appended
 * elements); a later read of that same row version can reuse the elements instead of fetching
 * and decoding the chain again.
 */
export interface DeltaBase {
  version: string;
  /** Version of the full value the chain starts from (the version itself for a full value). */
  root: string;
  items: readonly unknown[];
  /** Deltas stacked on the nearest full value; bounded so reads stay short. */
  depth: number;
  /** xmin of the blob row, when known: proves the row is still the one these items came from. */
  xmin?: string;
  /**
   * Earlier versions of the channel that this process stored as rows whose value is a prefix of
   * `items` (newest last, at most {@link MAX_PREFIXES}): a read of an older checkpoint whose row
   * still has that xmin slices `items` instead of fetching and decoding the chain.
   */
  prefixes?: readonly StoredPrefix[];
}

/** A stored row (by version and xmin) holding the first `length` elements of an entry's items. */
export interface StoredPrefix {
  version: string;
  xmin: string;
  length: number;
}

/** Earlier versions remembered per channel: recent history, the usual target of by-id reads. */
export const MAX_PREFIXES = 32;

/** `base`'s prefixes plus `base` itself, for an entry whose items extend base.items. */
export function prefixesAfter(base: DeltaBase): StoredPrefix[] {
  const prefixes = [...(base.prefixes ?? [])];
  if (base.xmin !== undefined)
    prefixes.push({ version: base.version, xmin: base.xmin, length: base.items.length });
  return prefixes.length > MAX_PREFIXES ? prefixes.slice(-MAX_PREFIXES) : prefixes;
}

/** Limits of a {@link DeltaCache}. */
export interface DeltaCacheLimits {
  /** Threads (x namespaces) remembered at most; 0 disables the cache. */
  maxThreads: number;
  /** Estimated bytes the remembered values may keep alive at most (see size.ts). */
  maxBytes: number;
}

/** Bookkeeping per remembered value: the prefixes list and the map entry. */
const BASE_OVERHEAD_BYTES = 256;
const PREFIX_BYTES = 96;

interface ThreadEntry {
  channels: Map<string, DeltaBase>;
  /** Estimated bytes of `channels`, by channel. */
  sizes: Map<string, number>;
  bytes: number;
}

/**
 * An LRU of threads (thread x namespace), each with its array channels, bounded by threads and
 * by the estimated bytes the values keep alive. Losing an entry only costs one full write (or a
 * longer read); a value larger than the whole budget is not remembered at all.
 */
export class DeltaCache {
  private readonly threads = new Map<string, ThreadEntry>();
  private totalBytes = 0;

  constructor(private readonly limits: DeltaCacheLimits) {}

  private static key(threadId: string, ns: string): string {
    return `${threadId}\u0000${ns}`;
  }

  private touch(key: string): ThreadEntry | undefined {
    const hit = this.threads.get(key);
    if (hit) {
      this.threads.delete(key);
      this.threads.set(key, hit);
    }
    return hit;
  }

  /** Every remembered channel of a thread/namespace (marks it recently used). */
  channels(threadId: string, ns: string): Map<string, DeltaBase> | undefined {
    return this.touch(DeltaCache.key(threadId, ns))?.channels;
  }

  get(threadId: string, ns: string, channel: string): DeltaBase | undefined {
    return this.channels(threadId, ns)?.get(channel);
  }

  set(threadId: string, ns: string, channel: string, base: DeltaBase): void {
    const { maxThreads, maxBytes } = this.limits;
    if (maxThreads <= 0 || maxBytes <= 0) return;
    const bytes =
      estimateItemsBytes(base.items) +
      BASE_OVERHEAD_BYTES +
      PREFIX_BYTES * (base.prefixes?.length ?? 0);
    const key = DeltaCache.key(threadId, ns);
    if (bytes > maxBytes) {
      // Larger than the whole budget: keeping it would evict everything else for one thread.
      this.delete(threadId, ns, channel);
      return;
    }
    let entry = this.touch(key);
    if (!entry) {
      entry = { channels: new Map(), sizes: new Map(), bytes: 0 };
      this.threads.set(key, entry);
    }
    this.forget(entry, channel);
    entry.channels.set(channel, base);
    entry.sizes.set(channel, bytes);
    entry.bytes += bytes;
    this.totalBytes += bytes;
    // Least recently used first; the entry just written is the most recent and stays.
    for (const [oldest, victim] of this.threads) {
      if (this.threads.size <= maxThreads && this.totalBytes <= maxBytes) break;
      if (oldest === key) break;
      this.totalBytes -= victim.bytes;
      this.threads.delete(oldest);
    }
  }

  private forget(entry: ThreadEntry, channel: string): void {
    const old = entry.sizes.get(channel);
    if (old === undefined) return;
    entry.sizes.delete(channel);
    entry.channels.delete(channel);
    entry.bytes -= old;
    this.totalBytes -= old;
  }

  delete(threadId: string, ns: string, channel: string): void {
    const key = DeltaCache.key(threadId, ns);
    const entry = this.threads.get(key);
    if (!entry) return;
    this.forget(entry, channel);
    if (entry.channels.size === 0) this.threads.delete(key);
  }

  /** Forgets every entry of a thread, in every namespace (after deleteThread). */
  deleteThread(threadId: string): void {
    const prefix = `${threadId}\u0000`;
    for (const [key, entry] of this.threads) {
      if (!key.startsWith(prefix)) continue;
      this.totalBytes -= entry.bytes;
      this.threads.delete(key);
    }
  }

  /** Threads remembered. */
  get size(): number {
    return this.threads.size;
  }

  /** Estimated bytes the remembered values keep alive. */
  get bytes(): number {
    return this.totalBytes;
  }
}

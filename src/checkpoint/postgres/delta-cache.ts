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

/**
 * A small LRU of threads (thread x namespace), each with its array channels. Losing an entry only
 * costs one full write or one full read.
 */
export class DeltaCache {
  private readonly threads = new Map<string, Map<string, DeltaBase>>();

  /** @param capacity threads (x namespaces) remembered at most. */
  constructor(private readonly capacity: number) {}

  private static key(threadId: string, ns: string): string {
    return `${threadId}\u0000${ns}`;
  }

  /** Every remembered channel of a thread/namespace (marks it recently used). */
  channels(threadId: string, ns: string): Map<string, DeltaBase> | undefined {
    const key = DeltaCache.key(threadId, ns);
    const hit = this.threads.get(key);
    if (hit) {
      this.threads.delete(key);
      this.threads.set(key, hit);
    }
    return hit;
  }

  get(threadId: string, ns: string, channel: string): DeltaBase | undefined {
    return this.channels(threadId, ns)?.get(channel);
  }

  set(threadId: string, ns: string, channel: string, base: DeltaBase): void {
    if (this.capacity <= 0) return;
    let channels = this.channels(threadId, ns);
    if (!channels) {
      channels = new Map();
      this.threads.set(DeltaCache.key(threadId, ns), channels);
      if (this.threads.size > this.capacity) {
        const oldest = this.threads.keys().next();
        if (!oldest.done) this.threads.delete(oldest.value);
      }
    }
    channels.set(channel, base);
  }

  delete(threadId: string, ns: string, channel: string): void {
    this.threads.get(DeltaCache.key(threadId, ns))?.delete(channel);
  }

  /** Forgets every entry of a thread, in every namespace (after deleteThread). */
  deleteThread(threadId: string): void {
    const prefix = `${threadId}\u0000`;
    for (const key of this.threads.keys()) if (key.startsWith(prefix)) this.threads.delete(key);
  }

  /** Threads remembered. */
  get size(): number {
    return this.threads.size;
  }
}

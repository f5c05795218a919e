/**
 * What this process last stored (or loaded) for an array channel of a thread: the version and
 * the element objects. A later put whose array starts with the same element objects is stored as
 * a delta (only the appended elements) against that version.
 */
export interface DeltaBase {
  version: string;
  /** Version of the full value the chain starts from (the version itself for a full value). */
  root: string;
  items: readonly unknown[];
  /** Deltas stacked on the nearest full value; bounded so reads stay short. */
  depth: number;
}

/** A small LRU keyed by thread/namespace/channel. Losing an entry only costs one full write. */
export class DeltaCache {
  private readonly map = new Map<string, DeltaBase>();

  constructor(private readonly capacity: number) {}

  private static key(threadId: string, ns: string, channel: string): string {
    return `${threadId}\u0000${ns}\u0000${channel}`;
  }

  get(threadId: string, ns: string, channel: string): DeltaBase | undefined {
    const key = DeltaCache.key(threadId, ns, channel);
    const hit = this.map.get(key);
    if (hit) {
      this.map.delete(key);
      this.map.set(key, hit);
    }
    return hit;
  }

  set(threadId: string, ns: string, channel: string, base: DeltaBase): void {
    if (this.capacity <= 0) return;
    const key = DeltaCache.key(threadId, ns, channel);
    this.map.delete(key);
    this.map.set(key, base);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  delete(threadId: string, ns: string, channel: string): void {
    this.map.delete(DeltaCache.key(threadId, ns, channel));
  }

  /** Forgets every entry of a thread (after deleteThread). */
  deleteThread(threadId: string): void {
    const prefix = `${threadId}\u0000`;
    for (const key of this.map.keys()) if (key.startsWith(prefix)) this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

/**
 * The order the importer reads keys in: grouped by the thread their names point to, so a thread
 * can be converted as soon as its group has been read, while later groups are still being read
 * (decision I21). Every saver's key is `<prefix><sep><thread id><sep>...` with `:` or `$` as the
 * separator, and a thread id may itself hold the separator, so a key's *hint* is only the text
 * up to the first separator after the prefix: every key of one thread has the same hint, several
 * threads may share one. The documents stay the truth about which thread a record belongs to
 * (the savers' reference notes: never parse ids out of keys); a key whose name does not start with its
 * document's thread id is a stray, and the import deals with it (see `import.ts`).
 */

/** Where the prefix of a saver key ends: its first `:` or `$` (no prefix holds either before). */
function separatorAt(key: string): number {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0x3a || c === 0x24) return i;
  }
  return -1;
}

/** The hint of a key: the text after its prefix up to the next separator. */
export function keyHint(key: string): string {
  const at = separatorAt(key);
  if (at < 0) return key;
  const end = key.indexOf(key[at]!, at + 1);
  return end < 0 ? key.slice(at + 1) : key.slice(at + 1, end);
}

/** The hints a key named after `threadId` can have (one per separator). */
function hintsOf(threadId: string): Set<string> {
  return new Set([threadId.split(":")[0]!, threadId.split("$")[0]!]);
}

/** Whether `key` is named after `threadId` (`<prefix><sep><threadId><sep>...`). */
export function keyNamesThread(key: string, threadId: string): boolean {
  const at = separatorAt(key);
  if (at < 0) return false;
  const end = at + 1 + threadId.length;
  return key.startsWith(threadId, at + 1) && key[end] === key[at];
}

/** Keys in read order, and where each hint's group of keys ends in that order. */
export interface ReadOrder {
  keys: string[];
  /** Per group, in order: its hint and the index one past its last key. */
  groups: Array<{ hint: string; end: number }>;
}

/**
 * Groups `keys` by hint, groups in hint order (so threads convert in about the id order they
 * did when the whole source was read first), keys within a group in the order given. One pass
 * and a sort of the hints, not of the keys.
 */
export function readOrder(keys: readonly string[]): ReadOrder {
  const byHint = new Map<string, string[]>();
  for (const key of keys) {
    const hint = keyHint(key);
    const list = byHint.get(hint);
    if (list) list.push(key);
    else byHint.set(hint, [key]);
  }
  const hints = [...byHint.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ordered: string[] = new Array<string>(keys.length);
  const groups: ReadOrder["groups"] = [];
  let n = 0;
  for (const hint of hints) {
    for (const key of byHint.get(hint)!) ordered[n++] = key;
    groups.push({ hint, end: n });
  }
  return { keys: ordered, groups };
}

/**
 * Which threads may convert, as the keys of a {@link ReadOrder} are read in order. A thread waits
 * for its group: the keys named after it all hold the same hint, so once that group has been
 * read, every key named after the thread has been. A *stray* (a record whose key is not named
 * after its document's thread: a renamed key, a foreign tool) can sit in any group, so a thread a
 * stray names waits for the end of the read; a stray read after its thread converted is found by
 * the import afterwards, and {@link ReadSchedule.keysOf} says what to read again for it.
 */
export class ReadSchedule {
  private group = 0;
  private readonly waiting = new Map<string, Set<string>>();
  private readonly late = new Set<string>();
  private readonly strays = new Map<string, string[]>();
  /** Threads {@link advance} has returned: a stray of theirs read later is the import's to repair. */
  private readonly released = new Set<string>();

  constructor(private readonly order: ReadOrder) {}

  /** A record of `threadId` was read from `key`. */
  saw(key: string, threadId: string): void {
    if (keyNamesThread(key, threadId)) {
      if (this.late.has(threadId)) return;
      const hint = keyHint(key);
      const threads = this.waiting.get(hint);
      if (threads) threads.add(threadId);
      else this.waiting.set(hint, new Set([threadId]));
      return;
    }
    const keys = this.strays.get(threadId);
    if (keys) keys.push(key);
    else this.strays.set(threadId, [key]);
    if (this.released.has(threadId)) return;
    this.late.add(threadId);
    for (const hint of hintsOf(threadId)) this.waiting.get(hint)?.delete(threadId);
  }

  /** Every key before index `keysRead` of the order has been read: the threads now ready. */
  advance(keysRead: number): string[] {
    const ready: string[] = [];
    const groups = this.order.groups;
    while (this.group < groups.length && groups[this.group]!.end <= keysRead) {
      const hint = groups[this.group++]!.hint;
      const threads = this.waiting.get(hint);
      if (!threads) continue;
      this.waiting.delete(hint);
      for (const t of threads) {
        this.released.add(t);
        ready.push(t);
      }
    }
    return ready;
  }

  /** The read is over: the threads still waiting (those strays name), in id order. */
  finish(): string[] {
    const rest = [...this.late];
    for (const threads of this.waiting.values()) for (const t of threads) rest.push(t);
    this.waiting.clear();
    this.late.clear();
    return rest.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Every key that may hold a record of `threadId`: the groups it can be named in, its strays. */
  keysOf(threadId: string): string[] {
    const hints = hintsOf(threadId);
    const keys: string[] = [];
    let start = 0;
    for (const g of this.order.groups) {
      if (hints.has(g.hint)) keys.push(...this.order.keys.slice(start, g.end));
      start = g.end;
    }
    for (const key of this.strays.get(threadId) ?? []) if (!keys.includes(key)) keys.push(key);
    return keys;
  }
}

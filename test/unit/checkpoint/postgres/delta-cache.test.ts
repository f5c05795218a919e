import { DeltaCache, type DeltaBase } from "../../../../src/checkpoint/postgres/delta-cache.js";
import { estimateBytes, estimateItemsBytes } from "../../../../src/checkpoint/size.js";

const KB = 1024;

function base(items: unknown[], version = "1"): DeltaBase {
  return { version, root: version, items, depth: 0, xmin: "1" };
}

function message(i: number, chars: number) {
  return { type: "human", content: `m${i} `.padEnd(chars, "x"), id: `id-${i}` };
}

describe("DeltaCache", () => {
  it("evicts least recently used threads once the estimated bytes exceed maxBytes", () => {
    const cache = new DeltaCache({ maxThreads: 10_000, maxBytes: 1024 * KB });
    for (let i = 0; i < 100; i++) cache.set(`t${i}`, "", "messages", base([message(i, 100 * KB)]));
    // 100 threads of ~100 KB against a 1 MiB budget: about ten remain, the newest ones.
    expect(cache.bytes).toBeLessThanOrEqual(1024 * KB);
    expect(cache.size).toBeLessThanOrEqual(10);
    expect(cache.size).toBeGreaterThanOrEqual(8);
    expect(cache.get("t99", "", "messages")).toBeDefined();
    expect(cache.get("t0", "", "messages")).toBeUndefined();
  });

  it("keeps the thread count bound too", () => {
    const cache = new DeltaCache({ maxThreads: 3, maxBytes: 1024 * KB * KB });
    for (let i = 0; i < 5; i++) cache.set(`t${i}`, "", "messages", base([message(i, 10)]));
    expect(cache.size).toBe(3);
    // Reading a thread makes it recent.
    cache.get("t2", "", "messages");
    cache.set("t5", "", "messages", base([message(5, 10)]));
    expect(cache.get("t2", "", "messages")).toBeDefined();
    expect(cache.get("t3", "", "messages")).toBeUndefined();
  });

  it("does not remember a value larger than the whole budget, and forgets the older one", () => {
    const cache = new DeltaCache({ maxThreads: 100, maxBytes: 64 * KB });
    cache.set("small", "", "messages", base([message(1, 1 * KB)]));
    cache.set("t", "", "messages", base([message(2, 1 * KB)]));
    cache.set("t", "", "messages", base([message(2, 1 * KB), message(3, 100 * KB)], "2"));
    expect(cache.get("t", "", "messages")).toBeUndefined();
    expect(cache.get("small", "", "messages")).toBeDefined();
  });

  it("accounts replaced, deleted and thread-deleted entries exactly", () => {
    const cache = new DeltaCache({ maxThreads: 100, maxBytes: 10 * 1024 * KB });
    const m = [message(1, 10 * KB)];
    cache.set("a", "", "messages", base(m));
    cache.set("a", "", "messages", base([...m, message(2, 10 * KB)], "2"));
    cache.set("a", "sub", "messages", base(m));
    cache.set("b", "", "messages", base(m));
    expect(cache.bytes).toBeGreaterThan(40 * KB);
    cache.delete("b", "", "messages");
    expect(cache.size).toBe(2);
    cache.deleteThread("a");
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it("stores nothing with maxThreads or maxBytes 0", () => {
    for (const limits of [
      { maxThreads: 0, maxBytes: 1024 },
      { maxThreads: 10, maxBytes: 0 },
    ]) {
      const cache = new DeltaCache(limits);
      cache.set("t", "", "messages", base([1]));
      expect(cache.size).toBe(0);
    }
  });
});

describe("heap estimates", () => {
  it("counts one byte per Latin-1 character and two beyond", () => {
    const ascii = "a".repeat(100 * KB);
    const wide = "\u4e2d".repeat(100 * KB);
    expect(estimateBytes({ content: ascii })).toBeGreaterThanOrEqual(100 * KB);
    expect(estimateBytes({ content: ascii })).toBeLessThan(101 * KB);
    expect(estimateBytes({ content: wide })).toBeGreaterThanOrEqual(200 * KB);
  });

  it("counts a long string referenced twice in one message once (lc_kwargs)", () => {
    const content = "b".repeat(100 * KB);
    const single = estimateBytes({ content });
    expect(estimateBytes({ content, lc_kwargs: { content } })).toBeLessThan(single + KB);
  });

  it("measures each element once and survives cycles", () => {
    const item: Record<string, unknown> = { content: "x".repeat(KB) };
    item.self = item;
    const n = estimateItemsBytes([item, item]);
    expect(n).toBeGreaterThan(2 * KB);
    expect(n).toBeLessThan(3 * KB);
  });
});

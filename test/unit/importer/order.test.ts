import { ReadSchedule, keyHint, keyNamesThread, readOrder } from "../../../src/importer/order.js";

describe("read order", () => {
  it("a key's hint is the text after its prefix up to the next separator", () => {
    expect(keyHint("checkpoint:t1::cp1")).toBe("t1");
    expect(keyHint("checkpoint_blob:t1:__empty__:messages:3")).toBe("t1");
    expect(keyHint("checkpoint_write:t:with:colons::cp:task:0")).toBe("t");
    expect(keyHint("checkpoint$t1$ns:sub$cp1")).toBe("t1");
    expect(keyHint("writes$a:b$$cp$task$0")).toBe("a:b");
    expect(keyHint("checkpoint:lonely")).toBe("lonely");
  });

  it("a key is named after a thread only when the id fills its first segments exactly", () => {
    expect(keyNamesThread("checkpoint:t1::cp", "t1")).toBe(true);
    expect(keyNamesThread("checkpoint:t:with:colons::cp", "t:with:colons")).toBe(true);
    expect(keyNamesThread("checkpoint$a:b$$cp", "a:b")).toBe(true);
    expect(keyNamesThread("checkpoint:t10::cp", "t1")).toBe(false);
    expect(keyNamesThread("checkpoint:t1", "t1")).toBe(false);
    expect(keyNamesThread("checkpoint:other::cp", "t1")).toBe(false);
  });

  it("groups keys by hint, groups in hint order, keys in the order given", () => {
    const order = readOrder([
      "checkpoint:b::1",
      "checkpoint:a::1",
      "checkpoint_blob:b::m:1",
      "checkpoint:a:x::2",
      "checkpoint_write:a::1:t:0",
    ]);
    expect(order.keys).toEqual([
      "checkpoint:a::1",
      "checkpoint:a:x::2",
      "checkpoint_write:a::1:t:0",
      "checkpoint:b::1",
      "checkpoint_blob:b::m:1",
    ]);
    expect(order.groups).toEqual([
      { hint: "a", end: 3 },
      { hint: "b", end: 5 },
    ]);
  });

  it("a thread is ready once its group is read; a thread a stray names waits for the end", () => {
    const order = readOrder([
      "checkpoint:a::1",
      "checkpoint:a:x::1",
      "checkpoint:b::1",
      "checkpoint:c::1",
    ]);
    const s = new ReadSchedule(order);
    s.saw("checkpoint:a::1", "a");
    s.saw("checkpoint:a:x::1", "a:x");
    expect(s.advance(1)).toEqual([]);
    expect(s.advance(2)).toEqual(["a", "a:x"]);
    // b's key holds a document of c (a stray): c waits for the end even once its group is read.
    s.saw("checkpoint:b::1", "c");
    expect(s.advance(3)).toEqual([]);
    s.saw("checkpoint:c::1", "c");
    expect(s.advance(4)).toEqual([]);
    expect(s.finish()).toEqual(["c"]);
    expect(s.keysOf("c")).toEqual(["checkpoint:c::1", "checkpoint:b::1"]);
    expect(s.keysOf("a:x")).toEqual(["checkpoint:a::1", "checkpoint:a:x::1"]);
  });

  it("a stray read before its thread's group takes the thread out of that group", () => {
    const order = readOrder(["checkpoint:a::1", "checkpoint:b::1"]);
    const s = new ReadSchedule(order);
    s.saw("checkpoint:a::1", "b");
    expect(s.advance(1)).toEqual([]);
    s.saw("checkpoint:b::1", "b");
    expect(s.advance(2)).toEqual([]);
    expect(s.finish()).toEqual(["b"]);
  });
});

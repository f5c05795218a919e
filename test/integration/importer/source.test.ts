import type { Redis } from "ioredis";
import { readRecords, scanKeys } from "../../../src/importer/source.js";
import type { RawRecord, SourceRecord } from "../../../src/importer/types.js";
import { connectRedis, deleteKeys, uniqueToken } from "./fixtures.js";

// The read path: STRING documents in one MGET per batch, everything else (hashes here; RedisJSON
// documents in production) by TYPE and the matching read, in the order of the keys given.
const token = uniqueToken("tlsource");
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis();
});

afterAll(async () => {
  await deleteKeys(redis, token);
  redis.disconnect();
});

async function readRaw(keys: string[], batchSize: number): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const batch of readRecords(redis, keys, { batchSize, inFlight: 2 }))
    out.push(...batch);
  return out;
}

/** The records with documents held as bytes shown as their text (what the import decodes). */
async function readAll(keys: string[], batchSize: number): Promise<RawRecord[]> {
  return (await readRaw(keys, batchSize)).map((r) =>
    r.kind === "jsonBytes" ? { key: r.key, kind: "json", text: r.bytes.toString("utf8") } : r,
  );
}

describe("importer source reads", () => {
  it("reads strings and hashes of one batch in key order and drops missing or other keys", async () => {
    const k = (s: string) => `checkpoint:${token}:${s}`;
    await redis.set(k("a"), '{"n":1}');
    await redis.hset(k("b"), { type: "json", checkpoint: Buffer.from([0xff, 0x01]) });
    await redis.set(k("c"), '{"n":3}');
    await redis.zadd(k("z"), 1, "member");
    const keys = [k("a"), k("b"), k("missing"), k("c"), k("z")];
    for (const batchSize of [1, 2, 100]) {
      const records = await readAll(keys, batchSize);
      expect(records.map((r) => r.key)).toEqual([k("a"), k("b"), k("c")]);
      expect(records[0]).toEqual({ key: k("a"), kind: "json", text: '{"n":1}' });
      const hash = records[1]!;
      expect(hash.kind).toBe("hash");
      if (hash.kind === "hash") {
        expect(hash.fields.get("type")!.toString()).toBe("json");
        // Binary field values survive as bytes.
        expect([...hash.fields.get("checkpoint")!]).toEqual([0xff, 0x01]);
      }
    }
  });

  it("hands MGET's documents over as their exact bytes (multi-byte UTF-8 included)", async () => {
    const k = (s: string) => `checkpoint:${token}:bytes:${s}`;
    const text = '{"thread_id":"t-\u00e9\u4e2d\ud83d\ude00","v":"\u00fc"}';
    await redis.set(k("a"), text);
    const [record] = await readRaw([k("a")], 10);
    expect(record!.kind).toBe("jsonBytes");
    if (record!.kind === "jsonBytes") expect(record!.bytes.toString("utf8")).toBe(text);
  });

  it("still reads strings after a batch that held none (MGET skipped, TYPE first)", async () => {
    const k = (s: string) => `checkpoint:${token}:skip:${s}`;
    await redis.hset(k("h1"), { type: "json" });
    await redis.hset(k("h2"), { type: "json" });
    await redis.set(k("s1"), '{"late":true}');
    const records = await readAll([k("h1"), k("h2"), k("s1")], 2);
    expect(records.map((r) => [r.key, r.kind])).toEqual([
      [k("h1"), "hash"],
      [k("h2"), "hash"],
      [k("s1"), "json"],
    ]);
  });

  it("scans every key once over many SCAN replies (the next one sent before a reply is sorted)", async () => {
    const scanToken = `${token}scan`;
    const pipe = redis.pipeline();
    for (let i = 0; i < 1500; i++) pipe.set(`checkpoint:${scanToken}:${i}`, "{}");
    for (let i = 0; i < 40; i++) pipe.zadd(`write_keys_zset:${scanToken}:${i}`, 1, "m");
    for (let i = 0; i < 7; i++) pipe.set(`other:${scanToken}:${i}`, "x");
    await pipe.exec();
    const r = await scanKeys(redis, { match: `*${scanToken}*`, count: 50 });
    expect(r.keys).toHaveLength(1500);
    expect(new Set(r.keys).size).toBe(1500);
    expect(r.auxiliary).toBe(40);
    expect(r.unknown).toBe(7);
  });

  it("an abort ends the scan with AbortError; the SCAN still in flight fails unobserved", async () => {
    const scanToken = `${token}abort`;
    const pipe = redis.pipeline();
    for (let i = 0; i < 500; i++) pipe.set(`checkpoint:${scanToken}:${i}`, "{}");
    await pipe.exec();
    const own = await connectRedis();
    const controller = new AbortController();
    // The real client; its second SCAN reply aborts the run and closes the connection, so the
    // third SCAN, sent before the abort is seen, fails: that failure must not go unhandled.
    let calls = 0;
    const client = Object.create(own) as Redis;
    client.scan = ((...args: Parameters<Redis["scan"]>) => {
      calls++;
      const reply = own.scan(...args);
      if (calls === 2)
        void reply.then(() => {
          controller.abort();
          own.disconnect();
        });
      return reply;
    }) as Redis["scan"];
    await expect(
      scanKeys(client, { match: `*${scanToken}*`, count: 10, signal: controller.signal }),
    ).rejects.toMatchObject({ name: "AbortError" });
    expect(calls).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 50));
  });
});

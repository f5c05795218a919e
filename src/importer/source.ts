import type { Redis } from "ioredis";
import { AUXILIARY_PREFIXES, KNOWN_PREFIXES } from "./formats/index.js";
import type { RawRecord } from "./types.js";

/**
 * Read-only access to the source Redis. Only SCAN (never KEYS, which blocks the server), TYPE,
 * JSON.GET, GET and HGETALL are sent: nothing is written and no TTL is touched (plain reads do
 * not refresh expiry; only the savers' own `refreshOnRead` did).
 */

/** What a keyspace scan found. */
export interface ScanResult {
  /** Keys with a prefix some reader handles, deduplicated (SCAN may return a key twice). */
  keys: string[];
  /** Saver index structures (write zsets, latest pointers), recognised and skipped. */
  auxiliary: number;
  /** Keys no reader recognises (other applications' data). */
  unknown: number;
}

/** Scans the keyspace with `SCAN MATCH <match> COUNT <count>` and sorts the keys by prefix. */
export async function scanKeys(
  redis: Redis,
  options: { match: string; count: number; signal?: AbortSignal | undefined },
): Promise<ScanResult> {
  const seen = new Set<string>();
  let auxiliary = 0;
  let unknown = 0;
  const counted = new Set<string>();
  let cursor = "0";
  do {
    options.signal?.throwIfAborted();
    const [next, batch] = await redis.scan(cursor, "MATCH", options.match, "COUNT", options.count);
    cursor = next;
    for (const key of batch) {
      if (KNOWN_PREFIXES.some((p) => key.startsWith(p))) seen.add(key);
      else if (!counted.has(key)) {
        counted.add(key);
        if (AUXILIARY_PREFIXES.some((p) => key.startsWith(p))) auxiliary++;
        else unknown++;
      }
    }
  } while (cursor !== "0");
  return { keys: [...seen], auxiliary, unknown };
}

/**
 * Reads `keys` in pipelined round trips of `batchSize`: one pipeline of TYPE, then one of the
 * read matching each type (`JSON.GET` for RedisJSON documents, `GET` for the STRING copies plain
 * Redis holds, `HGETALL` as bytes for hashes so binary msgpack survives). Keys that vanished
 * between SCAN and read (expired) or hold another type are dropped.
 */
export async function* readRecords(
  redis: Redis,
  keys: readonly string[],
  options: { batchSize: number; inFlight?: number; signal?: AbortSignal | undefined },
): AsyncGenerator<RawRecord[]> {
  // A few pipelines in flight hide the round trips behind the decoding of earlier batches.
  const inFlight = Math.max(1, options.inFlight ?? 4);
  const pending: Array<Promise<RawRecord[]>> = [];
  let i = 0;
  while (i < keys.length || pending.length > 0) {
    while (i < keys.length && pending.length < inFlight) {
      options.signal?.throwIfAborted();
      pending.push(readBatch(redis, keys.slice(i, i + options.batchSize)));
      i += options.batchSize;
    }
    yield await pending.shift()!;
  }
}

async function readBatch(redis: Redis, chunk: string[]): Promise<RawRecord[]> {
  const typePipe = redis.pipeline();
  for (const key of chunk) typePipe.type(key);
  const types = (await typePipe.exec()) ?? [];
  const readPipe = redis.pipeline();
  const planned: Array<{ key: string; kind: "json" | "hash" }> = [];
  chunk.forEach((key, j) => {
    const type = types[j]?.[1];
    if (type === "ReJSON-RL") {
      readPipe.call("JSON.GET", key);
      planned.push({ key, kind: "json" });
    } else if (type === "string") {
      readPipe.get(key);
      planned.push({ key, kind: "json" });
    } else if (type === "hash") {
      readPipe.hgetallBuffer(key);
      planned.push({ key, kind: "hash" });
    }
  });
  if (planned.length === 0) return [];
  const values = (await readPipe.exec()) ?? [];
  const records: RawRecord[] = [];
  planned.forEach((p, j) => {
    const [err, value] = values[j] ?? [null, null];
    if (err || value === null || value === undefined) return;
    if (p.kind === "json") {
      const text =
        typeof value === "string"
          ? value
          : Buffer.isBuffer(value)
            ? value.toString("utf8")
            : JSON.stringify(value);
      records.push({ key: p.key, kind: "json", text });
    } else {
      const fields = new Map(Object.entries(value as Record<string, Buffer>));
      if (fields.size > 0) records.push({ key: p.key, kind: "hash", fields });
    }
  });
  return records;
}

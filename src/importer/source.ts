import type { Redis } from "ioredis";
import { AUXILIARY_PREFIXES, KNOWN_PREFIXES } from "./formats/index.js";
import type { SourceRecord } from "./types.js";

/**
 * Read-only access to the source Redis. Only SCAN (never KEYS, which blocks the server), MGET,
 * TYPE, JSON.GET, GET and HGETALL are sent: nothing is written and no TTL is touched (plain reads do
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

/** Whether `key` starts with one of `prefixes` (a loop: this runs for every scanned key). */
function hasPrefix(key: string, prefixes: readonly string[]): boolean {
  for (let i = 0; i < prefixes.length; i++) if (key.startsWith(prefixes[i]!)) return true;
  return false;
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
  const scan = (cursor: string) => {
    const reply = redis.scan(cursor, "MATCH", options.match, "COUNT", options.count);
    // Awaited below unless an abort ends the loop first; then its failure must not go unhandled.
    reply.catch(() => undefined);
    return reply;
  };
  // The next SCAN is sent as soon as a reply names its cursor, so Redis scans while this
  // process sorts the keys it returned.
  options.signal?.throwIfAborted();
  let reply = scan("0");
  for (;;) {
    options.signal?.throwIfAborted();
    const [next, batch] = await reply;
    if (next !== "0") reply = scan(next);
    for (const key of batch) {
      if (hasPrefix(key, KNOWN_PREFIXES)) seen.add(key);
      else if (!counted.has(key)) {
        counted.add(key);
        if (hasPrefix(key, AUXILIARY_PREFIXES)) auxiliary++;
        else unknown++;
      }
    }
    if (next === "0") break;
  }
  return { keys: [...seen], auxiliary, unknown };
}

/**
 * Reads `keys` in round trips of `batchSize` keys. STRING values (the copies plain Redis holds
 * of RedisJSON documents) come back in one `MGET` per batch: one command instead of a TYPE and a
 * GET per key, so the client builds one reply array instead of thousands of command objects.
 * Keys MGET answers with nil (RedisJSON documents, hashes, or keys that expired) then get one
 * pipeline of TYPE and one of the read matching each type (`JSON.GET`, `HGETALL` as bytes so
 * binary msgpack survives). Once a batch held no STRING at all, later batches skip the MGET (a
 * RedisJSON or hash keyspace would only pay for nils). Keys that vanished between SCAN and read,
 * or hold another type, are dropped. Records keep the order of `keys`.
 */
export async function* readRecords(
  redis: Redis,
  keys: readonly string[],
  options: { batchSize: number; inFlight?: number; signal?: AbortSignal | undefined },
): AsyncGenerator<SourceRecord[]> {
  // A few batches in flight hide the round trips behind the decoding of earlier batches.
  const inFlight = Math.max(1, options.inFlight ?? 4);
  const state: ReadState = { strings: true };
  const pending: Array<Promise<SourceRecord[]>> = [];
  let i = 0;
  while (i < keys.length || pending.length > 0) {
    while (i < keys.length && pending.length < inFlight) {
      options.signal?.throwIfAborted();
      const batch = readBatch(redis, keys.slice(i, i + options.batchSize), state);
      // Awaited below unless the caller stops early; then its failure must not go unhandled.
      batch.catch(() => undefined);
      pending.push(batch);
      i += options.batchSize;
    }
    yield await pending.shift()!;
  }
}

/** Whether the keyspace seems to hold STRING documents (MGET first) or not (TYPE first). */
interface ReadState {
  strings: boolean;
}

async function readBatch(redis: Redis, chunk: string[], state: ReadState): Promise<SourceRecord[]> {
  const out: Array<SourceRecord | undefined> = new Array<SourceRecord | undefined>(chunk.length);
  let rest: number[] = [];
  if (state.strings) {
    // As bytes: views of the reply's socket chunks, outside the JS heap, where the garbage
    // collector does not copy them while they wait for their thread (decision I18).
    const values = await redis.mgetBuffer(chunk);
    let found = 0;
    for (let j = 0; j < chunk.length; j++) {
      const bytes = values[j];
      if (bytes) {
        out[j] = { key: chunk[j]!, kind: "jsonBytes", bytes };
        found++;
      } else rest.push(j);
    }
    if (found === 0) state.strings = false;
  } else {
    rest = chunk.map((_, j) => j);
  }
  if (rest.length > 0) await readTyped(redis, chunk, rest, out);
  const records: SourceRecord[] = [];
  for (const r of out) if (r !== undefined) records.push(r);
  return records;
}

/** The keys at `indexes` of `chunk`, read by type (TYPE pipeline, then one read each). */
async function readTyped(
  redis: Redis,
  chunk: string[],
  indexes: number[],
  out: Array<SourceRecord | undefined>,
): Promise<void> {
  const typePipe = redis.pipeline();
  for (const j of indexes) typePipe.type(chunk[j]!);
  const types = (await typePipe.exec()) ?? [];
  const readPipe = redis.pipeline();
  const planned: Array<{ j: number; kind: "json" | "hash" }> = [];
  indexes.forEach((j, n) => {
    const key = chunk[j]!;
    const type = types[n]?.[1];
    if (type === "ReJSON-RL") {
      readPipe.call("JSON.GET", key);
      planned.push({ j, kind: "json" });
    } else if (type === "string") {
      // Set between the MGET and now (or MGET was skipped).
      readPipe.get(key);
      planned.push({ j, kind: "json" });
    } else if (type === "hash") {
      readPipe.hgetallBuffer(key);
      planned.push({ j, kind: "hash" });
    }
  });
  if (planned.length === 0) return;
  const values = (await readPipe.exec()) ?? [];
  planned.forEach((p, n) => {
    const [err, value] = values[n] ?? [null, null];
    if (err || value === null || value === undefined) return;
    const key = chunk[p.j]!;
    if (p.kind === "json") {
      const text =
        typeof value === "string"
          ? value
          : Buffer.isBuffer(value)
            ? value.toString("utf8")
            : JSON.stringify(value);
      out[p.j] = { key, kind: "json", text };
    } else {
      const fields = new Map(Object.entries(value as Record<string, Buffer>));
      if (fields.size > 0) out[p.j] = { key, kind: "hash", fields };
    }
  });
}

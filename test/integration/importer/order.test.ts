import type { Redis } from "ioredis";
import type pg from "pg";
import { importRedis, type ImportSummary } from "../../../src/importer/index.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import {
  connectRedis,
  deleteKeys,
  fixtureCommands,
  recordConversation,
  uniqueToken,
  writeFixture,
  type Conversation,
  type FixtureFormat,
} from "./fixtures.js";

// Keys are read grouped by the thread their names point to, and a thread converts as soon as
// its group is read (decision I21). A record whose key is named after another thread (a stray:
// a renamed key) must still end up in its own thread, whether it is read before or after that
// thread converted, and the summary must count every thread once.

const token = uniqueToken("tlord");
const match = `*${token}*`;
let redis: Redis;
let pool: pg.Pool;
const schemas: string[] = [];
// Enough threads between A and the stray that A converts long before the stray is read.
const FILLERS = 150;

function newSchema(): string {
  const s = uniqueSchema("imp_order");
  schemas.push(s);
  return s;
}

/** Every imported row of `schema`, in key order. */
async function rows(schema: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const [table, key] of [
    ["checkpoints", "thread_id, checkpoint_ns, checkpoint_id"],
    ["checkpoint_blobs", "thread_id, checkpoint_ns, channel, version"],
    ["checkpoint_writes", "thread_id, checkpoint_ns, checkpoint_id, task_id, idx"],
  ] as const) {
    const r = await pool.query<{ row: unknown }>(
      `SELECT to_jsonb(t) AS row FROM "${schema}".${table} t ORDER BY ${key}`,
    );
    out.push(...r.rows.map((x) => x.row));
  }
  return out;
}

/** The summary without what differs between two runs of the same source. */
function counts(s: ImportSummary): Partial<ImportSummary> {
  const { durationMs: _d, readMs: _r, repairedThreads: _p, ...rest } = s;
  return rest;
}

const threadA = `${token}-a`;
const threadZ = `${token}-z`;
/** A key of `threadA`'s whose copy, named after a thread no other key names, sorts last. */
let strayOfA: { from: string; to: string };
/** A key of `threadZ`'s whose copy sorts first. */
let strayOfZ: { from: string; to: string };

beforeAll(async () => {
  await requirePostgres();
  redis = await connectRedis();
  pool = testPool(6);
  const template = await recordConversation(`${token}-template`, ["weather in sf?", "thanks"]);
  const write = async (format: FixtureFormat, conv: Conversation) => {
    await writeFixture(redis, format, conv);
    return fixtureCommands(format, conv).map((c) => c.key);
  };
  const aKeys = await write("python", { ...template, threadId: threadA });
  for (let i = 0; i < FILLERS; i++)
    await write(i % 2 ? "python" : "js", { ...template, threadId: `${token}-m${i}` });
  const zKeys = await write("js", { ...template, threadId: threadZ });
  // The latest checkpoint of each: the import would be visibly wrong without it.
  const latest = (keys: string[]) =>
    keys
      .filter((k) => k.startsWith("checkpoint:"))
      .sort()
      .at(-1)!;
  const a = latest(aKeys);
  const z = latest(zKeys);
  strayOfA = { from: a, to: a.replace(threadA, `${token}-zz`) };
  strayOfZ = { from: z, to: z.replace(threadZ, `${token}-0`) };
});

afterAll(async () => {
  await deleteKeys(redis, token);
  redis.disconnect();
  for (const s of schemas) await dropSchema(pool, s);
  await pool.end();
});

describe("import-redis read order", () => {
  it("records under keys named after other threads land in their own thread, counted once", async () => {
    const opts = { redis, pool, match, history: "full" as const, batchSize: 2, concurrency: 2 };
    const reference = newSchema();
    const before = await importRedis({ ...opts, schema: reference });
    expect(before.threadsImported).toBe(FILLERS + 2);
    expect(before.repairedThreads).toBeUndefined();
    const dryBefore = await importRedis({ ...opts, schema: newSchema(), dryRun: true });

    for (const s of [strayOfA, strayOfZ]) await redis.rename(s.from, s.to);
    try {
      const schema = newSchema();
      const after = await importRedis({ ...opts, schema });
      // A's group is read first and A converts long before the stray in the last group is read:
      // A is read again and converted again. Z's stray is read first, so Z waits for the end.
      expect(after.repairedThreads).toBe(1);
      expect(counts(after)).toEqual(counts(before));
      expect(await rows(schema)).toEqual(await rows(reference));

      const dry = await importRedis({ ...opts, schema: newSchema(), dryRun: true });
      expect(counts(dry)).toEqual(counts(dryBefore));

      // A rerun finds everything imported.
      const again = await importRedis({ ...opts, schema });
      expect(again.threadsImported).toBe(0);
      expect(again.skipped).toBe(FILLERS + 2);
      expect(again.checkpointsImported + again.writesImported + again.blobsImported).toBe(0);
      expect(await rows(schema)).toEqual(await rows(reference));
    } finally {
      for (const s of [strayOfA, strayOfZ]) await redis.rename(s.to, s.from);
    }
  });

  it("an abort while the source is still being read keeps what was written; a rerun adds the rest", async () => {
    const opts = { redis, pool, match, history: "full" as const, batchSize: 2, concurrency: 2 };
    const reference = newSchema();
    await importRedis({ ...opts, schema: reference });
    const schema = newSchema();
    const abort = new AbortController();
    const partial = await importRedis({
      ...opts,
      schema,
      signal: abort.signal,
      onProgress: (p) => {
        // The read stays at most 2 batches (4 threads) ahead of the conversion, so at 10 threads
        // written it is a tenth of the way through the source.
        if (p.phase === "import" && p.done >= 10) abort.abort();
      },
    });
    expect(partial.interrupted).toBe(true);
    expect(partial.threadsImported).toBeGreaterThanOrEqual(10);
    expect(partial.threadsImported).toBeLessThan(FILLERS);
    const rest = await importRedis({ ...opts, schema });
    expect(rest.interrupted).toBe(false);
    expect(rest.skipped).toBe(partial.threadsImported);
    expect(rest.threadsImported).toBe(FILLERS + 2 - partial.threadsImported);
    expect(await rows(schema)).toEqual(await rows(reference));
  });
});

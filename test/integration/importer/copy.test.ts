import type { Redis } from "ioredis";
import type pg from "pg";
import { migrate } from "../../../src/db/migrator.js";
import { importRedis } from "../../../src/importer/index.js";
import type { ThreadRows } from "../../../src/importer/serialize.js";
import { ImportWriter } from "../../../src/importer/writer.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import {
  connectRedis,
  deleteKeys,
  FIXTURE_FORMATS,
  recordConversation,
  uniqueToken,
  writeFixture,
} from "./fixtures.js";

// The bulk path: with copyMinRows 1 every table of every batch is loaded with binary COPY
// (straight into the table, staged when rows are already there). It must store exactly what the
// array-parameter INSERTs store, and keep their idempotence.
const token = uniqueToken("tlcopy");
let redis: Redis;
let pool: pg.Pool;
const viaCopy = uniqueSchema("imp_copy");
const viaInsert = uniqueSchema("imp_insert");
const viaText = uniqueSchema("imp_text");

beforeAll(async () => {
  await requirePostgres();
  redis = await connectRedis();
  pool = testPool(4);
  for (const format of FIXTURE_FORMATS) {
    const conv = await recordConversation(`${token}-${format}`, ["weather in sf?", "thanks"]);
    await writeFixture(redis, format, conv);
  }
});

afterAll(async () => {
  await deleteKeys(redis, token);
  redis.disconnect();
  await dropSchema(pool, viaCopy);
  await dropSchema(pool, viaInsert);
  await dropSchema(pool, viaText);
  await pool.end();
});

/** Every row of the checkpoint tables, in a stable order, as text. */
async function tableRows(schema: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, order] of [
    ["checkpoints", "thread_id, checkpoint_ns, checkpoint_id"],
    ["checkpoint_blobs", "thread_id, checkpoint_ns, channel, version"],
    ["checkpoint_writes", "thread_id, checkpoint_ns, checkpoint_id, task_id, idx"],
  ] as const) {
    const { rows } = await pool.query<{ r: string }>(
      `SELECT t::text AS r FROM "${schema}".${table} t ORDER BY ${order}`,
    );
    out[table] = rows.map((x) => x.r);
  }
  const { rows } = await pool.query<{ r: string }>(
    `SELECT (thread_id, created_at, last_activity)::text AS r FROM "${schema}".checkpoint_threads ORDER BY thread_id`,
  );
  out.checkpoint_threads = rows.map((x) => x.r);
  return out;
}

describe("import-redis bulk path (COPY)", () => {
  it("stores exactly what the INSERT path stores, verifies, and a second run imports nothing", async () => {
    const common = { redis, pool, match: `*${token}*`, history: "full" as const, batchSize: 4 };
    const copied = await importRedis({ ...common, schema: viaCopy, copyMinRows: 1, verify: true });
    const inserted = await importRedis({
      ...common,
      schema: viaInsert,
      copyMinRows: Number.POSITIVE_INFINITY,
    });
    expect(copied.invalid).toBe(0);
    expect(copied.verify?.mismatches).toBe(0);
    expect(copied.checkpointsImported).toBeGreaterThan(FIXTURE_FORMATS.length);
    expect(copied.writesImported).toBeGreaterThan(0);
    for (const k of ["threadsImported", "checkpointsImported", "writesImported", "blobsImported"])
      expect(copied[k as keyof typeof copied]).toBe(inserted[k as keyof typeof inserted]);

    const a = await tableRows(viaCopy);
    const b = await tableRows(viaInsert);
    expect(a.checkpoints!.length).toBe(copied.checkpointsImported);
    expect(a).toEqual(b);

    // Without the journal the rows themselves are the guard: ON CONFLICT DO NOTHING through COPY.
    await pool.query(`TRUNCATE "${viaCopy}".threadline_import_journal`);
    const again = await importRedis({ ...common, schema: viaCopy, copyMinRows: 1 });
    expect(again).toMatchObject({
      threadsImported: 0,
      checkpointsImported: 0,
      writesImported: 0,
      invalid: 0,
    });
    expect(await tableRows(viaCopy)).toEqual(a);

    // Some rows present, some missing: the direct COPY conflicts, its savepoint is rolled back,
    // and the staged COPY adds exactly the missing rows, in the same transaction.
    const gone = await pool.query(
      `DELETE FROM "${viaCopy}".checkpoints WHERE checkpoint_id IN (SELECT checkpoint_id FROM "${viaCopy}".checkpoints ORDER BY checkpoint_id LIMIT 3)`,
    );
    const goneBlobs = await pool.query(
      `DELETE FROM "${viaCopy}".checkpoint_blobs WHERE (thread_id, channel, version) IN (SELECT thread_id, channel, version FROM "${viaCopy}".checkpoint_blobs ORDER BY thread_id, channel, version LIMIT 2)`,
    );
    await pool.query(`TRUNCATE "${viaCopy}".threadline_import_journal`);
    const refill = await importRedis({ ...common, schema: viaCopy, copyMinRows: 1 });
    expect(refill.invalid).toBe(0);
    expect(refill.checkpointsImported).toBe(gone.rowCount);
    expect(refill.blobsImported).toBe(goneBlobs.rowCount);
    expect(refill.writesImported).toBe(0);
    expect(await tableRows(viaCopy)).toEqual(a);
  });

  it("a value kept as JSON text is stored as its UTF-8 bytes by COPY and by INSERT, backslashes included", async () => {
    await migrate(pool, { schema: viaText });
    // Backslashes are escapes in bytea's text input: a string sent as a bytea parameter would
    // lose them, so the INSERT path must send the bytes.
    const text = JSON.stringify({ s: 'a\\b "q" é \n \u0001', t: "\\x41" });
    const rows = (threadId: string): ThreadRows => ({
      threadId,
      formats: ["js"],
      createdAt: null,
      lastActivity: null,
      fingerprint: "full|=c1",
      checkpoints: [{ ns: "", id: "c1", parentId: null, checkpoint: '{"v":4}', metadata: "{}" }],
      blobs: [{ ns: "", channel: "messages", version: "1", type: "json", blob: text }],
      writes: [
        {
          ns: "",
          checkpointId: "c1",
          taskId: "t",
          taskPath: "",
          idx: 0,
          channel: "messages",
          type: "json",
          blob: text,
        },
      ],
      bytes: text.length,
    });
    await new ImportWriter(pool, viaText, "test", { copyMinRows: 1 }).write([rows("via-copy")]);
    await new ImportWriter(pool, viaText, "test", {
      copyMinRows: Number.POSITIVE_INFINITY,
    }).write([rows("via-insert")]);
    for (const table of ["checkpoint_blobs", "checkpoint_writes"]) {
      const { rows: got } = await pool.query<{ thread_id: string; blob: Buffer }>(
        `SELECT thread_id, blob FROM "${viaText}".${table} ORDER BY thread_id`,
      );
      expect(got.map((r) => r.thread_id)).toEqual(["via-copy", "via-insert"]);
      for (const r of got) expect(r.blob.equals(Buffer.from(text, "utf8"))).toBe(true);
    }
  });
});

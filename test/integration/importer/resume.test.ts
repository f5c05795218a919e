import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import type pg from "pg";
import { PostgresCheckpointer } from "../../../src/checkpoint/index.js";
import { importRedis } from "../../../src/importer/index.js";
import {
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";
import {
  TEST_REDIS_DB,
  connectRedis,
  deleteKeys,
  recordConversation,
  uniqueToken,
  writeFixture,
  type FixtureFormat,
} from "./fixtures.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const token = uniqueToken("tlres");
const match = `*${token}*`;
const THREADS = 12;
const formats: FixtureFormat[] = ["python", "js", "howto-dollar", "checkpoint-redis"];
let redis: Redis;
let pool: pg.Pool;
const schemas: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), "tl-import-"));

function newSchema(): string {
  const s = uniqueSchema("imp_resume");
  schemas.push(s);
  return s;
}

beforeAll(async () => {
  await requirePostgres();
  redis = await connectRedis();
  pool = testPool(6);
  for (let i = 0; i < THREADS; i++) {
    const threadId = `${token}-${String(i).padStart(2, "0")}`;
    const conv = await recordConversation(threadId, ["hello", "weather in sf?"]);
    await writeFixture(redis, formats[i % formats.length]!, conv);
  }
});

afterAll(async () => {
  await deleteKeys(redis, token);
  redis.disconnect();
  for (const s of schemas) await dropSchema(pool, s);
  await pool.end();
  rmSync(tmp, { recursive: true, force: true });
});

describe("import-redis runs", () => {
  it("an interrupted run resumes where it stopped, without redoing imported threads", async () => {
    const schema = newSchema();
    const abort = new AbortController();
    const partial = await importRedis({
      redis,
      pool,
      schema,
      match,
      batchSize: 3,
      concurrency: 1,
      signal: abort.signal,
      onProgress: (p) => {
        if (p.phase === "import" && p.done >= 6) abort.abort();
      },
    });
    expect(partial.interrupted).toBe(true);
    expect(partial.threadsImported).toBe(6);

    const rest = await importRedis({ redis, pool, schema, match, batchSize: 3 });
    expect(rest.interrupted).toBe(false);
    expect(rest.skipped).toBe(6);
    expect(rest.threadsImported).toBe(THREADS - 6);

    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM "${schema}".threadline_import_journal`,
    );
    expect(rows[0].n).toBe(THREADS);
    const checkpointer = new PostgresCheckpointer(pool, { schema });
    for (let i = 0; i < THREADS; i++) {
      const tuple = await checkpointer.getTuple({
        configurable: { thread_id: `${token}-${String(i).padStart(2, "0")}` },
      });
      expect((tuple?.checkpoint.channel_values.messages as unknown[]).length).toBe(6);
    }
  });

  it("an already-present checkpoint is never overwritten, even without the journal", async () => {
    const schema = newSchema();
    await importRedis({ redis, pool, schema, match });
    await pool.query(`UPDATE "${schema}".checkpoints SET metadata = '{"marker":true}'`);
    await pool.query(`TRUNCATE "${schema}".threadline_import_journal`);
    const again = await importRedis({ redis, pool, schema, match });
    expect(again).toMatchObject({
      threadsImported: 0,
      checkpointsImported: 0,
      writesImported: 0,
      skipped: THREADS,
    });
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM "${schema}".checkpoints WHERE metadata = '{"marker":true}'`,
    );
    expect(rows[0].n).toBe(THREADS);
  });

  it("--dry-run reports what would be imported and writes nothing", async () => {
    const schema = newSchema();
    const dry = await importRedis({ redis, pool, schema, match, dryRun: true });
    expect(dry).toMatchObject({
      dryRun: true,
      threadsImported: THREADS,
      checkpointsImported: THREADS,
      invalid: 0,
    });
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1`,
      [schema],
    );
    expect(rows[0].n).toBe(0);
  });

  it("a corrupted document is rejected, counted and written to the rejects file while the rest imports", async () => {
    const schema = newSchema();
    const bad = `${token}-zz-corrupt`;
    const pickled = `${token}-zz-pickle`;
    const conv = await recordConversation(bad, ["hello"]);
    await writeFixture(redis, "python", conv);
    const latest = conv.checkpoints.at(-1)!;
    const key = `checkpoint:${bad}:__empty__:${latest.id}`;
    const text = (await redis.get(key))!;
    await redis.set(key, text.slice(0, Math.floor(text.length / 2)));
    const conv2 = await recordConversation(pickled, ["hello"]);
    await writeFixture(redis, "python", conv2);
    const cp2 = conv2.checkpoints.at(-1)!;
    await redis.set(
      `checkpoint_write:${pickled}:__empty__:${cp2.id}:task-1:0`,
      JSON.stringify({
        thread_id: pickled,
        checkpoint_ns: "__empty__",
        checkpoint_id: cp2.id,
        task_id: "task-1",
        idx: 0,
        channel: "messages",
        type: "pickle",
        blob: "gASVAAAAAAAAAACMCGJ1aWx0aW5zlC4=",
      }),
    );
    const rejectsPath = join(tmp, "rejects.jsonl");
    try {
      const summary = await importRedis({ redis, pool, schema, match, rejectsPath });
      expect(summary.invalid).toBe(2);
      expect(summary.threadsImported).toBe(THREADS);
      const lines = readFileSync(rejectsPath, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { threadId: string; reason: string });
      expect(lines.map((l) => l.threadId).sort()).toEqual([bad, pickled]);
      expect(lines.find((l) => l.threadId === bad)!.reason).toMatch(/not valid JSON/);
      expect(lines.find((l) => l.threadId === pickled)!.reason).toMatch(/pickle/);
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM "${schema}".checkpoints WHERE thread_id = ANY($1)`,
        [[bad, pickled]],
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await deleteKeys(redis, `${token}-zz-`);
    }
  });

  it("threadline import-redis --json prints the summary and is idempotent", async () => {
    const schema = newSchema();
    const cli = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            "--import",
            "tsx",
            "src/cli.ts",
            "import-redis",
            "--redis-url",
            `${TEST_REDIS_URL}/${TEST_REDIS_DB}`,
            ...args,
          ],
          {
            cwd: root,
            env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL, THREADLINE_LOG_LEVEL: "warn" },
            timeout: 60_000,
          },
          (err, stdout, stderr) =>
            resolve({
              code: err ? (typeof err.code === "number" ? err.code : -1) : 0,
              stdout,
              stderr,
            }),
        );
      });
    const first = await cli("--schema", schema, "--match", match, "--json", "--verify");
    expect(first.code).toBe(0);
    const report = JSON.parse(first.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      threadsImported: THREADS,
      checkpointsImported: THREADS,
      skipped: 0,
      invalid: 0,
      dryRun: false,
    });
    expect(typeof report.writesImported).toBe("number");
    expect(typeof report.durationMs).toBe("number");
    expect(report.verify).toMatchObject({ mismatches: 0 });

    const second = await cli("--schema", schema, "--match", match, "--json");
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({
      threadsImported: 0,
      checkpointsImported: 0,
      skipped: THREADS,
    });

    const bad = await cli("--schema", schema, "--history", "sometimes");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--history/);
    // Three CLI runs through tsx: a minute or more on a loaded machine.
  }, 240_000);
});

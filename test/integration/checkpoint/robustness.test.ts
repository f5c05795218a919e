import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { createPool } from "../../../src/db/pool.js";
import { isThreadlineError } from "../../../src/errors.js";
import { TEST_DATABASE_URL, installedSchema, uniqueSchema } from "../../helpers/db.js";

const { admin, schema } = installedSchema("tl_robust");

const meta = { source: "loop" as const, step: 0, parents: {} };

function checkpoint(values: Record<string, unknown> = {}) {
  const cp = emptyCheckpoint();
  cp.id = uuid6(-1);
  cp.channel_values = values;
  cp.channel_versions = Object.fromEntries(Object.keys(values).map((k) => [k, 1]));
  return cp;
}

describe("PostgresCheckpointer robustness", () => {
  it("survives pg_terminate_backend of its pooled connections under load: the process keeps running and the next calls succeed", async () => {
    const appName = `tl_robust_${process.pid}`;
    const pool = createPool({
      connectionString: TEST_DATABASE_URL,
      applicationName: appName,
      max: 6,
    });
    const saver = new PostgresCheckpointer(pool, {
      schema,
      retry: { attempts: 6, baseDelayMs: 20 },
    });
    try {
      let failures = 0;
      let done = 0;
      let killed = 0;
      let killing = true;
      // Counted, not timed: the workers run until the killer has terminated backends in five
      // rounds and they have completed 60 turns, however slow the machine is.
      const worker = async (w: number) => {
        while (killing || done < 60) {
          try {
            const cp = checkpoint({ messages: [`m${done}`] });
            const cfg = await saver.put(
              { configurable: { thread_id: `load-${w}` } },
              cp,
              meta,
              cp.channel_versions,
            );
            await saver.putWrites(cfg, [["messages", "x"]], "task");
            await saver.getTuple(cfg);
            done++;
          } catch {
            failures++;
          }
        }
      };
      const killer = (async () => {
        for (let round = 0; round < 5 || killed < 5; round++) {
          await new Promise((r) => setTimeout(r, 100));
          const { rowCount } = await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            [appName],
          );
          killed += rowCount ?? 0;
        }
        killing = false;
      })();
      await Promise.all([...Array.from({ length: 6 }, (_, w) => worker(w)), killer]);
      expect(done).toBeGreaterThanOrEqual(60);
      expect(killed).toBeGreaterThanOrEqual(5);
      // Retries absorb terminated backends; what remains must be rare, and never a crash.
      expect(failures).toBe(0);
      const cp = checkpoint();
      const cfg = await saver.put({ configurable: { thread_id: "after" } }, cp, meta, {});
      expect(await saver.getTuple(cfg)).toBeDefined();
    } finally {
      await pool.end();
    }
  });

  it("an idle pooled connection terminated by the server does not crash the process", async () => {
    const appName = `tl_idle_${process.pid}`;
    const pool = createPool({
      connectionString: TEST_DATABASE_URL,
      applicationName: appName,
      max: 2,
    });
    const saver = new PostgresCheckpointer(pool, { schema });
    try {
      await saver.getTuple({ configurable: { thread_id: "nobody" } });
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [appName],
      );
      await new Promise((r) => setTimeout(r, 100));
      expect(await saver.getTuple({ configurable: { thread_id: "nobody" } })).toBeUndefined();
    } finally {
      await pool.end();
    }
  });

  it.each([
    `a"; DROP TABLE x; --`,
    "Public",
    "1abc",
    "",
    "a".repeat(64),
    "sp ace",
    "quo'te",
    "pg_temp\u0000",
    "information_schema",
    "pg_catalog",
    "pg_toast",
    "pg_temp_3",
    "pg_threadline",
  ])("rejects the invalid schema name %j with INVALID_INPUT", (bad) => {
    let err: unknown;
    try {
      new PostgresCheckpointer(admin, { schema: bad });
    } catch (e) {
      err = e;
    }
    expect(isThreadlineError(err, "INVALID_INPUT")).toBe(true);
  });

  it("rejects a missing thread_id with INVALID_INPUT and writes nothing", async () => {
    const saver = new PostgresCheckpointer(admin, { schema });
    const cp = checkpoint();
    await expect(saver.put({ configurable: {} }, cp, meta, {})).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(saver.put({}, cp, meta, {})).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(
      saver.putWrites({ configurable: { checkpoint_id: "x" } }, [["a", 1]], "t"),
    ).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(
      saver.put({ configurable: { thread_id: { nested: true } } }, cp, meta, {}),
    ).rejects.toMatchObject({ code: "INVALID_INPUT" });
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM "${schema}".checkpoints WHERE checkpoint_id = $1`,
      [cp.id],
    );
    expect(rows[0].n).toBe(0);
  });

  it("fromConnString builds its own pool with the given settings and end() closes it", async () => {
    const saver = PostgresCheckpointer.fromConnString(TEST_DATABASE_URL, {
      schema,
      pool: { max: 3 },
    });
    expect(saver.pool.options.max).toBe(3);
    const cp = checkpoint();
    const cfg = await saver.put({ configurable: { thread_id: "from-conn" } }, cp, meta, {});
    expect((await saver.getTuple(cfg))?.checkpoint.id).toBe(cp.id);
    await saver.end();
    expect(saver.pool.ending).toBe(true);
  });

  it("returns undefined for unknown thread and checkpoint ids", async () => {
    const saver = new PostgresCheckpointer(admin, { schema });
    expect(await saver.getTuple({ configurable: { thread_id: "missing" } })).toBeUndefined();
    expect(
      await saver.getTuple({ configurable: { thread_id: "load-0", checkpoint_id: "no-such-id" } }),
    ).toBeUndefined();
  });

  it("stores metadata containing NUL characters instead of failing (22P05 in the official saver)", async () => {
    const saver = new PostgresCheckpointer(admin, { schema });
    const cp = checkpoint({ note: "a\u0000b" });
    const cfg = await saver.put(
      { configurable: { thread_id: "nul" } },
      cp,
      { ...meta, note: "bad\u0000byte", ["k\u0000ey"]: 1 } as never,
      cp.channel_versions,
    );
    const tuple = await saver.getTuple(cfg);
    expect((tuple?.metadata as Record<string, unknown>).note).toBe("badbyte");
    expect(tuple?.checkpoint.channel_values.note).toBe("a\u0000b");
  });

  it("reports a missing schema as SCHEMA_NOT_INSTALLED", async () => {
    const saver = new PostgresCheckpointer(admin, { schema: uniqueSchema("tl_absent") });
    await expect(saver.getTuple({ configurable: { thread_id: "x" } })).rejects.toMatchObject({
      code: "SCHEMA_NOT_INSTALLED",
    });
  });

  it("continues a thread whose channel versions are Python-style strings", () => {
    const saver = new PostgresCheckpointer(admin, { schema });
    // Integer part + 1, plus a random fraction (see test/unit/checkpoint/postgres/versions).
    expect(
      Math.floor(
        saver.getNextVersion("00000000000000000000000000000003.0.123" as unknown as number),
      ),
    ).toBe(4);
    expect(Math.floor(saver.getNextVersion(undefined))).toBe(1);
    expect(Math.floor(saver.getNextVersion(7))).toBe(8);
  });
});

import { copyFileSync, readdirSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { loadMigrations, migrate, pendingMigrations } from "../../../src/db/migrator.js";
import { packageRoot } from "../../../src/paths.js";
import { isThreadlineError } from "../../../src/errors.js";
import { attachPoolErrorHandler } from "../../../src/db/pool.js";
import { tempDir } from "../../helpers/tmp.js";
import {
  TEST_DATABASE_URL,
  dropSchema,
  requirePostgres,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";

const admin = testPool(2);
const schemas: string[] = [];
const schema = (prefix: string) => {
  const s = uniqueSchema(prefix);
  schemas.push(s);
  return s;
};

beforeAll(requirePostgres);
afterAll(async () => {
  for (const s of schemas) await dropSchema(admin, s);
  await admin.end();
});

/** The number after the newest shipped migration, as the 4-digit prefix of a file name. */
const nextNumber = (plus = 1) =>
  String(Math.max(...loadMigrations().map((m) => m.version)) + plus).padStart(4, "0");

function copyMigrations(): string {
  const dir = tempDir("tl-migrations-");
  const src = join(packageRoot(), "sql", "migrations");
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dir, f));
  return dir;
}

describe("migrator", () => {
  it("80 concurrent setup() calls from 8 pools on an empty schema all succeed", async () => {
    const s = schema("tl_mig_race");
    // 8 pools of 3: 24 sessions race for the migration lock, within the suite's connection budget
    // (two test files run at once on a server with the default max_connections of 100).
    const pools = Array.from({ length: 8 }, () =>
      attachPoolErrorHandler(new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 3 })),
    );
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 80 }, (_, i) =>
          new PostgresCheckpointer(pools[i % 8]!, { schema: s }).setup(),
        ),
      );
      const failures = results.filter((r) => r.status === "rejected");
      expect(failures).toEqual([]);
      const { rows } = await admin.query(
        `SELECT count(*)::int AS n FROM "${s}".threadline_migrations`,
      );
      expect(rows[0].n).toBe(loadMigrations().length);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it("a second migrate is a no-op", async () => {
    const s = schema("tl_mig_twice");
    const first = await migrate(admin, { schema: s });
    expect(first.applied.length).toBe(loadMigrations().length);
    const second = await migrate(admin, { schema: s });
    expect(second.applied).toEqual([]);
    expect(await pendingMigrations(admin, { schema: s })).toEqual([]);
  });

  it("refuses a schema whose applied migration was edited (MIGRATION_CHECKSUM_MISMATCH)", async () => {
    const s = schema("tl_mig_edit");
    const dir = copyMigrations();
    await migrate(admin, { schema: s, migrations: loadMigrations(dir) });
    const first = readdirSync(dir).sort()[0]!;
    appendFileSync(join(dir, first), "\n-- an innocent-looking edit\n");
    const edited = loadMigrations(dir);
    const err = await migrate(admin, { schema: s, migrations: edited }).catch((e: unknown) => e);
    expect(isThreadlineError(err, "MIGRATION_CHECKSUM_MISMATCH")).toBe(true);
  });

  it("refuses a database migrated by a newer Threadline (SCHEMA_TOO_NEW)", async () => {
    const s = schema("tl_mig_new");
    const dir = copyMigrations();
    writeFileSync(
      join(dir, `${nextNumber()}_from_the_future.sql`),
      "CREATE TABLE :SCHEMA.future (id int);\n",
    );
    await migrate(admin, { schema: s, migrations: loadMigrations(dir) });
    const err = await migrate(admin, { schema: s }).catch((e: unknown) => e);
    expect(isThreadlineError(err, "SCHEMA_TOO_NEW")).toBe(true);
    expect((err as Error).message).toMatch(/newer/);
  });

  it("a failing migration rolls back its ledger row and can be retried", async () => {
    const s = schema("tl_mig_fail");
    const dir = copyMigrations();
    writeFileSync(
      join(dir, `${nextNumber()}_broken.sql`),
      "CREATE TABLE :SCHEMA.broken (id int);\nSELECT 1/0;\n",
    );
    const err = await migrate(admin, { schema: s, migrations: loadMigrations(dir) }).catch(
      (e: unknown) => e,
    );
    expect(isThreadlineError(err)).toBe(true);
    const { rows } = await admin.query(
      `SELECT max(version)::int AS v FROM "${s}".threadline_migrations`,
    );
    expect(rows[0].v).toBe(Math.max(...loadMigrations().map((m) => m.version)));
    const { rows: t } = await admin.query("SELECT to_regclass($1) AS t", [`${s}.broken`]);
    expect(t[0].t).toBeNull();
  });

  it("takes each file's number as its version and accepts a gap in the numbering", () => {
    const dir = tempDir("tl-migrations-");
    writeFileSync(join(dir, "0001_first.sql"), "SELECT 1;\n");
    writeFileSync(join(dir, "0003_third.sql"), "SELECT 3;\n");
    expect(loadMigrations(dir).map((m) => [m.version, m.name])).toEqual([
      [1, "first"],
      [3, "third"],
    ]);
  });

  it("refuses two files with one number, and a file without a number", () => {
    const dup = tempDir("tl-migrations-");
    writeFileSync(join(dup, "0001_first.sql"), "SELECT 1;\n");
    writeFileSync(join(dup, "0001_again.sql"), "SELECT 1;\n");
    expect(() => loadMigrations(dup)).toThrow(/0001_first\.sql must be named NNNN_<slug>\.sql/);
    const bad = tempDir("tl-migrations-");
    writeFileSync(join(bad, "first.sql"), "SELECT 1;\n");
    expect(() => loadMigrations(bad)).toThrow(/must be named/);
  });

  it("refuses a file that fills a gap below an applied migration (MIGRATION_OUT_OF_ORDER)", async () => {
    const s = schema("tl_mig_gap");
    const dir = copyMigrations();
    writeFileSync(
      join(dir, `${nextNumber(2)}_ahead.sql`),
      "CREATE TABLE :SCHEMA.ahead (id int);\n",
    );
    await migrate(admin, { schema: s, migrations: loadMigrations(dir) });
    writeFileSync(join(dir, `${nextNumber(1)}_late.sql`), "CREATE TABLE :SCHEMA.late (id int);\n");
    const withLate = loadMigrations(dir);
    for (const attempt of [
      () => migrate(admin, { schema: s, migrations: withLate }),
      () => pendingMigrations(admin, { schema: s, migrations: withLate }),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(isThreadlineError(err, "MIGRATION_OUT_OF_ORDER")).toBe(true);
      expect((err as Error).message).toMatch(/Renumber the file above/);
    }
    const { rows } = await admin.query("SELECT to_regclass($1) AS t", [`${s}.late`]);
    expect(rows[0].t).toBeNull();
  });

  it("dry run lists the pending SQL with the schema escaped and changes nothing", async () => {
    const s = schema("tl_mig_dry");
    const pending = await pendingMigrations(admin, { schema: s });
    expect(pending.map((m) => m.version)).toEqual(loadMigrations().map((m) => m.version));
    expect(pending[0]!.rendered).toContain(`"${s}".checkpoints`);
    const { rows } = await admin.query("SELECT to_regnamespace($1) AS n", [s]);
    expect(rows[0].n).toBeNull();
  });
});

import { copyFileSync, mkdtempSync, readdirSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { loadMigrations, migrate, pendingMigrations } from "../../../src/db/migrator.js";
import { packageRoot } from "../../../src/paths.js";
import { isThreadlineError } from "../../../src/errors.js";
import { attachPoolErrorHandler } from "../../../src/db/pool.js";
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

function copyMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), "tl-migrations-"));
  const src = join(packageRoot(), "sql", "migrations");
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dir, f));
  return dir;
}

describe("migrator", () => {
  it("80 concurrent setup() calls from 8 pools on an empty schema all succeed", async () => {
    const s = schema("tl_mig_race");
    const pools = Array.from({ length: 8 }, () =>
      attachPoolErrorHandler(new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 10 })),
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
    const next = String(readdirSync(dir).length + 1).padStart(4, "0");
    writeFileSync(
      join(dir, `${next}_from_the_future.sql`),
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
    const next = String(readdirSync(dir).length + 1).padStart(4, "0");
    writeFileSync(
      join(dir, `${next}_broken.sql`),
      "CREATE TABLE :SCHEMA.broken (id int);\nSELECT 1/0;\n",
    );
    const err = await migrate(admin, { schema: s, migrations: loadMigrations(dir) }).catch(
      (e: unknown) => e,
    );
    expect(isThreadlineError(err)).toBe(true);
    const { rows } = await admin.query(
      `SELECT max(version)::int AS v FROM "${s}".threadline_migrations`,
    );
    expect(rows[0].v).toBe(loadMigrations().length);
    const { rows: t } = await admin.query("SELECT to_regclass($1) AS t", [`${s}.broken`]);
    expect(t[0].t).toBeNull();
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

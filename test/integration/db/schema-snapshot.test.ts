import type pg from "pg";
import { installedSchema } from "../../helpers/db.js";

const { admin, schema } = installedSchema("tl_snapshot");

/**
 * Everything the migrations create in a schema, as stable text: columns, constraints, indexes,
 * triggers, functions and the ledgers, with the schema name replaced by :SCHEMA. Built from the
 * catalog (pg_get_*def), which prints the same text across minor versions of one major.
 */
async function describeSchema(pool: pg.Pool, name: string): Promise<string> {
  const sections: Array<[string, string]> = [
    [
      "columns",
      `SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
              || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
              || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') AS line
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
    ],
    [
      "constraints",
      `SELECT c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid) AS line
         FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1
        ORDER BY c.relname, k.conname`,
    ],
    [
      "indexes",
      `SELECT pg_get_indexdef(i.indexrelid) AS line
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1
        ORDER BY c.relname`,
    ],
    [
      "triggers",
      `SELECT pg_get_triggerdef(t.oid) AS line
         FROM pg_trigger t
         JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND NOT t.tgisinternal
        ORDER BY c.relname, t.tgname`,
    ],
    [
      "functions",
      `SELECT pg_get_functiondef(p.oid) AS line
         FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = $1
        ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)`,
    ],
  ];
  const q = `"${name}"`;
  const out: string[] = [];
  for (const [title, sql] of sections) {
    const { rows } = await pool.query<{ line: string }>(sql, [name]);
    out.push(`-- ${title}`, ...rows.map((r) => r.line.trimEnd()), "");
  }
  const ledger = await pool.query<{ line: string }>(
    `SELECT version || ' ' || name AS line FROM ${q}.threadline_migrations ORDER BY version`,
  );
  const official = await pool.query<{ line: string }>(
    `SELECT v::text AS line FROM ${q}.checkpoint_migrations ORDER BY v`,
  );
  out.push("-- threadline_migrations", ...ledger.rows.map((r) => r.line), "");
  out.push("-- checkpoint_migrations", ...official.rows.map((r) => r.line), "");
  return out.join("\n").split(q).join(":SCHEMA").split(name).join(":SCHEMA");
}

describe("schema snapshot", () => {
  it("the migrated schema matches sql/schema.snapshot.txt (after a deliberate change: npx vitest run <this file> --update)", async () => {
    await expect(await describeSchema(admin, schema)).toMatchFileSnapshot(
      "../../../sql/schema.snapshot.txt",
    );
  });
});

import { installedSchema } from "../../helpers/db.js";

const { admin, schema } = installedSchema("tl_naming");

/**
 * The naming rule for what Threadline creates in a schema it may share with the application
 * (README "Migrations", decision K20): tables, views, sequences, functions and procedures start
 * with `threadline_`; indexes, constraints and triggers start with the name of their table.
 */
const OWN = /^threadline_[a-z0-9_]+$/;

/** Tables whose names are the official saver's contract (INTERFACE: adopt and be adopted). */
const OFFICIAL = new Set([
  "checkpoints",
  "checkpoint_blobs",
  "checkpoint_writes",
  "checkpoint_migrations",
]);

/**
 * Names that predate the rule. Frozen, not renamed: instances of the previous release query them
 * during a rolling deploy, and `cleanup_expired_threads` (with its family) is the documented SQL
 * API operators call. Nothing may join this list; the test fails when a name leaves it, so the
 * list shrinks on purpose.
 */
const FROZEN = new Set([
  "checkpoint_threads",
  "thread_owners",
  "agent_threads",
  "agent_runs",
  "agent_delete_thread",
  "cleanup_expired_threads",
  "cleanup_expired_threads_detailed",
  "cleanup_all_expired_threads",
  "cleanup_preview",
  "prune_thread_history",
]);

describe("names of Threadline's objects", () => {
  it("tables, views, sequences and routines start with threadline_ (or are official or frozen)", async () => {
    const { rows } = await admin.query<{ name: string; kind: string }>(
      `SELECT c.relname AS name, c.relkind::text AS kind FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       UNION ALL
       SELECT p.proname, p.prokind::text FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = $1`,
      [schema],
    );
    expect(rows.length).toBeGreaterThan(20);
    const names = new Set(rows.map((r) => r.name));
    const breaking = [...names].filter((n) => !OWN.test(n) && !OFFICIAL.has(n) && !FROZEN.has(n));
    expect(breaking).toEqual([]);
    expect([...FROZEN].filter((n) => !names.has(n))).toEqual([]);
  });

  it("indexes, constraints and triggers start with their table's name", async () => {
    const { rows } = await admin.query<{ name: string; tbl: string }>(
      `SELECT i.relname AS name, t.relname AS tbl FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1
       UNION ALL
       SELECT k.conname, t.relname FROM pg_constraint k
         JOIN pg_class t ON t.oid = k.conrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1
       UNION ALL
       SELECT g.tgname, t.relname FROM pg_trigger g
         JOIN pg_class t ON t.oid = g.tgrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = $1 AND NOT g.tgisinternal`,
      [schema],
    );
    expect(rows.length).toBeGreaterThan(15);
    expect(rows.filter((r) => !r.name.startsWith(`${r.tbl}_`))).toEqual([]);
  });
});

import pg from "pg";
import { PostgresCheckpointer } from "../src/checkpoint/postgres.js";
import { chatGraph, chatTurn } from "../test/helpers/graph.js";
import { messageText } from "./payload.js";
import { rowSize } from "./checkpoint.js";
const TT = Number(process.env.TT ?? 0);
const pool = new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:5432/test", max: 4 });
const schema = "probe_" + Math.random().toString(36).slice(2, 7);
const saver = new PostgresCheckpointer(pool, { schema });
await saver.setup();
if (TT) for (const t of ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]) await pool.query(`ALTER TABLE "${schema}".${t} SET (toast_tuple_target = ${TT})`);
const g = chatGraph(saver);
for (let i = 1; i <= 20; i++) await chatTurn(g, "t", messageText(i, "user"));
for (const t of ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]) {
  const { rows } = await pool.query(`SELECT count(*)::int n, sum(${rowSize(t)})::int bytes FROM "${schema}".${t} x`);
  console.log(t, rows[0]);
}
const { rows } = await pool.query(`SELECT channel, type, count(*)::int n, sum(${rowSize("checkpoint_blobs")})::int bytes, sum(length(blob))::int raw FROM "${schema}".checkpoint_blobs x GROUP BY 1,2 ORDER BY 4 DESC`);
console.table(rows);
const { rows: w } = await pool.query(`SELECT channel, count(*)::int n, sum(${rowSize("checkpoint_writes")})::int bytes, sum(length(blob))::int raw FROM "${schema}".checkpoint_writes x GROUP BY 1 ORDER BY 3 DESC`);
console.table(w);
const { rows: c } = await pool.query(`SELECT pg_column_size(checkpoint) cp, pg_column_size(metadata) md, checkpoint::text FROM "${schema}".checkpoints x ORDER BY checkpoint_id DESC LIMIT 1`);
console.log(c[0]);
await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
await pool.end();

import { createHash } from "node:crypto";
import { quoteSchema } from "../../db/identifier.js";

/** A prepared-statement-ready query: the same name always has the same text. */
export interface Statement {
  name: string;
  text: string;
}

function statement(text: string): Statement {
  return { name: `tl_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`, text };
}

// Blob payloads travel as text: UTF-8 JSON as is (no hex doubling, no array-literal parsing),
// anything else (the serializer's "bytes") as base64.
const payloadColumns = (alias: string) => `
    CASE WHEN ${alias}.type IN ('json', 'delta') THEN convert_from(${alias}.blob, 'UTF8') END AS txt,
    CASE WHEN ${alias}.type NOT IN ('json', 'delta', 'empty') AND ${alias}.blob IS NOT NULL
         THEN encode(${alias}.blob, 'base64') END AS b64`;

const payloadValue = (alias: string) =>
  `CASE WHEN ${alias}.b64 IS NOT NULL THEN decode(${alias}.b64, 'base64') ELSE convert_to(${alias}.txt, 'UTF8') END`;

/** The blob columns every lookup of the load query selects (from alias `x`). */
const BLOB_FIELDS =
  "x.thread_id, x.checkpoint_ns, x.channel, x.version, x.type, x.delta_base, x.delta_root, x.xmin::text AS xmin, x.blob";

/** A kind-1 (blob) row of the load query, from alias `b` holding BLOB_FIELDS. */
const BLOB_ROW = `SELECT 1, b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, b.delta_base, b.delta_root, b.xmin,
       NULL,${payloadColumns("b")}`;

/** Columns every checkpoint selection must produce for {@link loadQuery}. */
const CP_COLUMNS =
  "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata";

/**
 * The hot-path statements of one schema, built once. Every statement filters each table it
 * reads by `thread_id = $n` and inserts a parameter as thread_id, so that with the tables
 * distributed by thread_id (Citus) each one is a single-shard router query; `list` without a
 * thread is a search, not a hot path. test/integration/checkpoint/router-statements.test.ts
 * checks the statements as they are sent.
 */
export class Statements {
  readonly schema: string;
  private readonly s: string;
  private readonly listCache = new Map<string, Statement>();

  /**
   * One round trip per put: blobs and the checkpoint row in one statement (implicitly atomic).
   * $14 holds the xmin of each delta row's base; no row comes back when a base is gone.
   */
  readonly put: Statement;
  /** put plus queued pending writes of the same thread, in one statement (see WriteQueue). */
  readonly putWithWrites: Statement;
  /** Queued pending writes of one thread ($1), one statement; see {@link Statements.writesInsert}. */
  readonly putWrites: Statement;
  /** The latest checkpoint of a thread/namespace with its blobs and writes, one round trip. */
  readonly getLatest: Statement;
  /** One checkpoint by id with its blobs and writes, one round trip. */
  readonly getById: Statement;
  /** The TASKS writes of parents, for checkpoints older than format v4 (rare). */
  readonly pendingSends: Statement;
  /** Every row of a thread, all tables, one statement under the thread's write lock. */
  readonly deleteThread: Statement;
  /** The ancestors' writes and seed of delta channels, one round trip (see deltaHistoryQuery). */
  readonly deltaHistory: Statement;
  /** Whether the schema is distributed with Citus (asked once, before a list across threads). */
  readonly distributed: Statement;

  constructor(schema: string) {
    this.schema = schema;
    const s = (this.s = quoteSchema(schema));
    // Every put first takes the thread's write lock and re-checks its delta bases
    // (threadline_lock_for_put, migration 0010); when a base is gone (the thread was deleted by
    // another process since this one read it) nothing is inserted and no row comes back, and the
    // saver stores the checkpoint again with every value whole. Each insert reads `gate`, so
    // none runs before the lock is granted (a delete holding it has committed by then).
    const gate = `gate AS MATERIALIZED (
  SELECT ${s}.threadline_lock_for_put($1, $2, $7::text[], $12::text[], $14::text[]) AS ok
)`;
    // The checkpoint insert is a CTE too and the statement a SELECT over it (one row when the
    // gate let it through): Citus plans a RETURNING that reads another CTE apart from that CTE.
    const checkpointInsert = `saved AS (
  INSERT INTO ${s}.checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
  SELECT $1, $2, $3, $4, $5::jsonb, $6::jsonb FROM gate WHERE gate.ok
  ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
  DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
  RETURNING 1
)
SELECT (SELECT coalesce(json_agg(json_build_array(channel, xmin::text)), '[]') FROM stored) AS stored
FROM saved`;
    const blobsCte = `stored AS (
  INSERT INTO ${s}.checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob, delta_base, delta_root)
  SELECT $1, $2, u.channel, u.version, u.type, ${payloadValue("u")}, u.base, u.root
  FROM gate, unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
    AS u(channel, version, type, txt, b64, base, root)
  WHERE gate.ok
  ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
  RETURNING channel, xmin
)`;
    this.put = statement(`WITH ${gate},
${blobsCte},
${checkpointInsert}`);
    // The writes do not depend on the bases (they belong to the parent checkpoint): stored
    // either way, after the lock.
    this.putWithWrites = statement(`WITH ${gate},
written AS (
  ${this.writesInsert(15, "put", "gate, ")}
),
${blobsCte},
${checkpointInsert}`);
    this.putWrites = statement(this.writesInsert(1, "thread"));

    this.getLatest = statement(
      this.loadQuery(
        `SELECT ${CP_COLUMNS} FROM ${s}.checkpoints
   WHERE thread_id = $1 AND checkpoint_ns = $2 ORDER BY checkpoint_id DESC LIMIT 1`,
        "$1",
        3,
      ),
    );
    this.getById = statement(
      this.loadQuery(
        `SELECT ${CP_COLUMNS} FROM ${s}.checkpoints
   WHERE thread_id = $1 AND checkpoint_ns = $2 AND checkpoint_id = $3`,
        "$1",
        4,
      ),
    );
    this.pendingSends =
      statement(`SELECT w.checkpoint_id, w.type, w.task_path, w.task_id, w.idx, ${payloadColumns("w")}
FROM ${s}.checkpoint_writes w
WHERE w.thread_id = $1 AND w.checkpoint_ns = $2 AND w.checkpoint_id = ANY($3::text[]) AND w.channel = '__pregel_tasks'`);

    // Under the thread's write lock (migration 0010), so a put in flight elsewhere is deleted
    // with the rest instead of surviving on rows that are gone.
    this.deleteThread = statement(`SELECT ${s}.threadline_delete_thread($1)`);
    this.deltaHistory = statement(this.deltaHistoryQuery());
    this.distributed = statement(`SELECT ${s}.threadline_distributed() AS distributed`);
  }

  /**
   * `getDeltaChannelHistory` in one statement: from checkpoint $3 (the latest when null) of
   * thread $1, namespace $2, walks `parent_checkpoint_id` back and returns, for the channels $4
   * still being walked at each ancestor, its pending writes (kind 1) and, where the ancestor
   * stored a value of the channel (a `DeltaSnapshot` or a pre-delta value), that value (kind 2),
   * which ends the walk for the channel. The same rows the base class's walk reads with one
   * `getTuple` per ancestor. `wanted` is what an ancestor is read for, `remaining` what its
   * parent is; `depth` orders the rows (1 = the checkpoint's parent). Every lookup is a LATERAL
   * probe keyed by the chain row (parent by primary key, writes by checkpoint id, a stored value
   * by channel and version; LIMIT/OFFSET keep the planner from flattening them): joined plainly,
   * it scanned the thread's checkpoints and writes once per step, quadratic in the thread's
   * length (60 steps x 60 rows for a 20-turn thread).
   */
  private deltaHistoryQuery(): string {
    const s = this.s;
    return `WITH RECURSIVE chain AS (
  SELECT c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint -> 'channel_versions' AS versions,
         0 AS depth, $4::text[] AS wanted, $4::text[] AS remaining
  FROM ${s}.checkpoints c
  WHERE c.thread_id = $1 AND c.checkpoint_ns = $2
    AND c.checkpoint_id = coalesce($3::text, (
      SELECT max(m.checkpoint_id) FROM ${s}.checkpoints m
      WHERE m.thread_id = $1 AND m.checkpoint_ns = $2))
  UNION ALL
  SELECT p.checkpoint_id, p.parent_checkpoint_id, p.versions, ch.depth + 1,
         ch.remaining,
         ARRAY(SELECT r FROM unnest(ch.remaining) AS r WHERE NOT EXISTS (
           SELECT 1 FROM ${s}.checkpoint_blobs x
           WHERE x.thread_id = $1 AND x.checkpoint_ns = $2 AND x.channel = r
             AND x.version = p.versions ->> r AND x.type <> 'empty'))
  FROM chain ch
  CROSS JOIN LATERAL (
    SELECT q.checkpoint_id, q.parent_checkpoint_id, q.checkpoint -> 'channel_versions' AS versions
    FROM ${s}.checkpoints q
    WHERE q.thread_id = $1 AND q.checkpoint_ns = $2 AND q.checkpoint_id = ch.parent_checkpoint_id
    LIMIT 1
  ) p
  WHERE cardinality(ch.remaining) > 0
)
SELECT 1 AS kind, ch.depth, w.task_id, w.channel, w.type, w.task_path, w.idx,${payloadColumns("w")}
FROM chain ch
CROSS JOIN LATERAL (
  SELECT * FROM ${s}.checkpoint_writes x
  WHERE x.thread_id = $1 AND x.checkpoint_ns = $2 AND x.checkpoint_id = ch.checkpoint_id
    AND x.channel = ANY(ch.wanted)
  OFFSET 0
) w
WHERE ch.depth > 0
UNION ALL
SELECT 2, ch.depth, NULL, b.channel, b.type, NULL, NULL,${payloadColumns("b")}
FROM chain ch
CROSS JOIN LATERAL unnest(ch.wanted) AS c(channel)
CROSS JOIN LATERAL (
  SELECT * FROM ${s}.checkpoint_blobs x
  WHERE x.thread_id = $1 AND x.checkpoint_ns = $2 AND x.channel = c.channel
    AND x.version = ch.versions ->> c.channel AND x.type <> 'empty'
  LIMIT 1
) b
WHERE ch.depth > 0 AND NOT (c.channel = ANY(ch.remaining))`;
  }

  /**
   * Inserts pending writes given as parallel arrays from parameter `$first` on. `rows`:
   * `put`, every row belongs to the thread and namespace of the put ($1, $2); `thread`, every
   * row belongs to the thread `$first` and the first array holds each row's namespace. The
   * thread is always a parameter, never a column of the arrays, so that a Citus router sends
   * the statement to the thread's shard. Special channels (negative idx) overwrite their slot,
   * other rows never do. `from` prefixes the FROM list (the put's `gate`).
   */
  private writesInsert(first: number, rows: "put" | "thread", from = ""): string {
    const perThread = rows === "thread";
    const [thread, ns] = perThread ? [`$${first}`, "u.checkpoint_ns"] : ["$1", "$2"];
    const arraysFrom = perThread ? first + 1 : first;
    const names = [
      ...(perThread ? ["checkpoint_ns"] : []),
      "checkpoint_id",
      "task_id",
      "task_path",
      "idx",
      "channel",
      "type",
      "txt",
      "b64",
    ];
    const arrays = names.map((n, i) => `$${arraysFrom + i}::${n === "idx" ? "int" : "text"}[]`);
    return `INSERT INTO ${this.s}.checkpoint_writes
  (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT ${thread}, ${ns}, u.checkpoint_id, u.task_id, u.task_path, u.idx, u.channel, u.type, ${payloadValue("u")}
FROM ${from}unnest(${arrays.join(", ")}) AS u(${names.join(", ")})
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
  SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob, task_path = EXCLUDED.task_path
  WHERE EXCLUDED.idx < 0`;
  }

  /**
   * A list query for one combination of filters. `where` holds placeholders numbered from $1;
   * the text only varies with which filters are present, so there are few distinct statements.
   * A thread filter, when present, comes first (`thread_id = $1`). `distributed`: the schema
   * is distributed with Citus (see {@link Statements.loadQuery}).
   */
  list(where: string[], limitParam: string | undefined, distributed = false): Statement {
    const key = `${where.join("&")}|${limitParam ?? ""}|${distributed}`;
    let cached = this.listCache.get(key);
    if (!cached) {
      const whereSql = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
      cached = statement(
        this.loadQuery(
          `SELECT ${CP_COLUMNS} FROM ${this.s}.checkpoints ${whereSql}
   ORDER BY checkpoint_id DESC${limitParam ? ` LIMIT ${limitParam}` : ""}`,
          where[0] === "thread_id = $1" ? "$1" : undefined,
          undefined,
          distributed,
        ),
      );
      this.listCache.set(key, cached);
    }
    return cached;
  }

  /**
   * Wraps a checkpoint selection into one query that also returns, as separate rows, every blob
   * the selected checkpoints need (for a delta, every row of its chain, found through
   * delta_root in one index scan; a row shared by several listed checkpoints comes once, a
   * chain's root may come twice) and their pending writes.
   * Row kinds: 0 checkpoint, 1 blob, 2 write, 3 a blob the caller already holds.
   *
   * `thread` is the parameter holding the thread of every selected checkpoint, when there is
   * one: each lookup then filters by it directly (`x.thread_id = $1`), which is what lets Citus
   * route the whole statement to the thread's shard (a join condition on `cp.thread_id` does
   * not; LIMIT inside LATERAL is then pushed down with the rest). A list across threads joins by
   * the selected rows' thread instead.
   *
   * With `knownFrom`, parameters $knownFrom..+2 list (channel, version, xmin) triples the caller
   * holds decoded: a wanted blob whose row still has that xmin (the same row version, not one
   * deleted and written again) comes back as a kind-3 row without payload or chain.
   */
  private loadQuery(
    selection: string,
    thread: string | undefined,
    knownFrom?: number,
    distributed = false,
  ): string {
    const s = this.s;
    const threadOf = (alias: string) => thread ?? `${alias}.thread_id`;
    // On a distributed schema a list across threads has no LIMIT/OFFSET in its lateral lookups:
    // Citus cannot push a LIMIT down into a lateral subquery that reads a CTE (and a search has
    // no single shard anyway). On plain PostgreSQL they stay: without them the planner, which
    // guesses 100 rows per jsonb_each_text, hashes a sequential scan of every blob.
    const keepLimits = thread !== undefined || !distributed;
    const one = keepLimits ? "LIMIT 1" : "";
    const unflattened = keepLimits ? "OFFSET 0" : "";
    const known =
      knownFrom === undefined
        ? ""
        : `known AS (
  SELECT * FROM unnest($${knownFrom}::text[], $${knownFrom + 1}::text[], $${knownFrom + 2}::text[])
    AS k(channel, version, xid)
),
`;
    const cached =
      knownFrom === undefined
        ? "false"
        : "EXISTS (SELECT 1 FROM known k WHERE k.channel = b.channel AND k.version = b.version AND k.xid = b.xmin)";
    return `WITH cp AS (
  ${selection}
),
${known}
want AS (
  SELECT DISTINCT cp.thread_id, cp.checkpoint_ns, v.key AS channel, v.value AS version
  FROM cp, jsonb_each_text(cp.checkpoint -> 'channel_versions') v
),
heads AS (
  -- LATERAL + LIMIT: one primary-key probe per wanted version. As a plain join the planner,
  -- which guesses 100 rows for jsonb_each_text, hashes a sequential scan of all blobs.
  SELECT b.*, ${cached} AS cached
  FROM want w CROSS JOIN LATERAL (
    SELECT ${BLOB_FIELDS}
    FROM ${s}.checkpoint_blobs x
    WHERE x.thread_id = ${threadOf("w")} AND x.checkpoint_ns = w.checkpoint_ns
      AND x.channel = w.channel AND x.version = w.version
    ${one} -- the key is the primary key; LIMIT also keeps the subquery from being flattened
  ) b
),
chains AS (
  -- Each delta chain once, however many listed checkpoints end in it.
  SELECT DISTINCT thread_id, checkpoint_ns, channel, delta_root
  FROM heads WHERE delta_root IS NOT NULL AND NOT cached
)
SELECT 0 AS kind, cp.thread_id, cp.checkpoint_ns, cp.checkpoint_id AS c1, cp.parent_checkpoint_id AS c2,
       cp.checkpoint::text AS c3, cp.metadata::text AS c4, NULL::text AS c5, NULL::text AS c6,
       NULL::int AS n, NULL::text AS txt, NULL::text AS b64
FROM cp
UNION ALL
SELECT 3, h.thread_id, h.checkpoint_ns, h.channel, h.version, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM heads h WHERE h.cached
UNION ALL
-- Full values wanted directly.
${BLOB_ROW}
FROM heads b WHERE NOT b.cached AND b.delta_root IS NULL
UNION ALL
-- Every row of each chain (the wanted deltas among them), by one scan of the delta_root index.
${BLOB_ROW}
FROM chains g CROSS JOIN LATERAL (
  SELECT ${BLOB_FIELDS}
  FROM ${s}.checkpoint_blobs x
  WHERE x.thread_id = ${threadOf("g")} AND x.checkpoint_ns = g.checkpoint_ns
    AND x.channel = g.channel AND x.delta_root = g.delta_root
  ${unflattened} -- not flattened: a parameterized scan of the delta_root index
) b
UNION ALL
-- The full value each chain starts from.
${BLOB_ROW}
FROM chains g CROSS JOIN LATERAL (
  SELECT ${BLOB_FIELDS}
  FROM ${s}.checkpoint_blobs x
  WHERE x.thread_id = ${threadOf("g")} AND x.checkpoint_ns = g.checkpoint_ns
    AND x.channel = g.channel AND x.version = g.delta_root
  ${one}
) b
UNION ALL
SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.channel, w.type, w.task_path, NULL,
       w.idx,${payloadColumns("w")}
FROM cp CROSS JOIN LATERAL (
  SELECT x.thread_id, x.checkpoint_ns, x.checkpoint_id, x.task_id, x.channel, x.type, x.task_path, x.idx, x.blob
  FROM ${s}.checkpoint_writes x
  WHERE x.thread_id = ${threadOf("cp")} AND x.checkpoint_ns = cp.checkpoint_ns AND x.checkpoint_id = cp.checkpoint_id
  ${unflattened}
) w`;
  }
}

import { installedSchema } from "../../helpers/db.js";

const { admin, schema } = installedSchema("tl_put_gate");

/** Stores one blob row of `thread` and returns its xmin, as the saver records it. */
async function storeBlob(thread: string, channel: string, version: string): Promise<string> {
  const { rows } = await admin.query<{ xmin: string }>(
    `INSERT INTO "${schema}".checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
     VALUES ($1, '', $2, $3, 'json', '\\x7b7d') RETURNING xmin::text AS xmin`,
    [thread, channel, version],
  );
  return rows[0]!.xmin;
}

/** threadline_lock_for_put in its own statement (and transaction). */
async function gate(
  thread: string,
  channels: (string | null)[],
  bases: (string | null)[],
  xmins: (string | null)[],
): Promise<boolean> {
  const { rows } = await admin.query<{ ok: boolean }>(
    `SELECT "${schema}".threadline_lock_for_put($1, '', $2::text[], $3::text[], $4::text[]) AS ok`,
    [thread, channels, bases, xmins],
  );
  return rows[0]!.ok;
}

describe("threadline_lock_for_put, the put's gate (migration 0018)", () => {
  it("passes a put whose every delta base is stored, and stops one whose base is gone or rewritten", async () => {
    const a = await storeBlob("g1", "messages", "v1");
    const b = await storeBlob("g1", "scratch", "v3");
    // A put without deltas, or with NULL bases only (whole values), has nothing to check.
    expect(await gate("g1", [], [], [])).toBe(true);
    expect(await gate("g1", ["messages"], [null], [null])).toBe(true);
    expect(await gate("g1", ["messages"], ["v1"], [a])).toBe(true);
    expect(
      await gate("g1", ["messages", "other", "scratch"], ["v1", null, "v3"], [a, null, b]),
    ).toBe(true);
    // More calls than the plan cache's five custom plans on each of the pool's two connections:
    // the probes' cached generic plans give the same answers.
    for (let i = 0; i < 12; i++) {
      expect(await gate("g1", ["messages"], ["v1"], [a])).toBe(true);
      expect(await gate("g1", ["messages"], ["v2"], [a])).toBe(false);
    }
    // A missing version, another thread, a base rewritten since (another xmin), a missing xmin.
    expect(await gate("g1", ["messages"], ["v9"], [a])).toBe(false);
    expect(await gate("g2", ["messages"], ["v1"], [a])).toBe(false);
    expect(await gate("g1", ["messages"], ["v1"], [String(Number(a) + 1)])).toBe(false);
    expect(await gate("g1", ["messages"], ["v1"], [])).toBe(false);
    // One base of two gone is enough to stop the put.
    expect(await gate("g1", ["messages", "scratch"], ["v1", "v4"], [a, b])).toBe(false);
  });

  it("holds the thread's write lock until the put's transaction ends", async () => {
    const client = await admin.connect();
    const other = await admin.connect();
    const tryLock = async (thread: string) =>
      (
        await other.query<{ got: boolean }>(
          `SELECT pg_try_advisory_xact_lock(1953265522, hashtext($1)) AS got`,
          [thread],
        )
      ).rows[0]!.got;
    try {
      await client.query("BEGIN");
      await client.query(
        `SELECT "${schema}".threadline_lock_for_put('locked', '', '{}'::text[], '{}'::text[], '{}'::text[])`,
      );
      await other.query("BEGIN");
      expect(await tryLock("locked")).toBe(false);
      expect(await tryLock("free")).toBe(true);
      await other.query("ROLLBACK");
      await client.query("COMMIT");
      await other.query("BEGIN");
      expect(await tryLock("locked")).toBe(true);
      await other.query("ROLLBACK");
    } finally {
      client.release();
      other.release();
    }
  });
});

import { installedSchema } from "../../helpers/db.js";

const { admin, schema } = installedSchema("tl_activity");

/** Inserts one checkpoint and one write of `thread` in a transaction, marked as the importer's or not. */
async function write(thread: string, importer: boolean): Promise<void> {
  const client = await admin.connect();
  try {
    await client.query("BEGIN");
    if (importer)
      await client.query(`SELECT set_config('threadline.activity_at', '-infinity', true)`);
    await client.query(
      `INSERT INTO "${schema}".checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata) VALUES ($1, '', 'c1', '{}', '{}')`,
      [thread],
    );
    await client.query(
      `INSERT INTO "${schema}".checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, blob) VALUES ($1, '', 'c1', 't', 0, 'x', '\\x00')`,
      [thread],
    );
    await client.query("COMMIT");
  } finally {
    client.release();
  }
}

const threadRow = async (thread: string) =>
  (
    await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".checkpoint_threads WHERE thread_id = $1`,
      [thread],
    )
  ).rows[0]!.n;

describe("the activity trigger on checkpoints and checkpoint_writes (migration 0017)", () => {
  it("records every writer's thread, and skips only a transaction the importer marked", async () => {
    await write("plain", false);
    expect(await threadRow("plain")).toBe(1);

    // The importer upserts the thread's row itself before its rows (writer.ts), so its marked
    // transactions leave the trigger out; an unmarked write after it still touches the thread.
    await write("imported", true);
    expect(await threadRow("imported")).toBe(0);

    // Any other value of the setting is a real activity time and fires the trigger as before.
    const client = await admin.connect();
    try {
      await client.query("BEGIN");
      await client.query(
        `SELECT set_config('threadline.activity_at', '2026-01-02T00:00:00Z', true)`,
      );
      await client.query(
        `INSERT INTO "${schema}".checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata) VALUES ('dated', '', 'c1', '{}', '{}')`,
      );
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const { rows } = await admin.query<{ last_activity: Date }>(
      `SELECT last_activity FROM "${schema}".checkpoint_threads WHERE thread_id = 'dated'`,
    );
    expect(rows[0]?.last_activity.toISOString()).toBe("2026-01-02T00:00:00.000Z");
  });
});

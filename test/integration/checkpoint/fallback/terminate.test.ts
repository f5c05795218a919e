import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { describe, expect, it } from "vitest";
import { FallbackCheckpointer } from "../../../../src/checkpoint/fallback/index.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import { createPool } from "../../../../src/db/pool.js";
import { TEST_DATABASE_URL, installedSchema } from "../../../helpers/db.js";

const { admin, schema } = installedSchema("tl_fb_kill");

const meta = { source: "loop" as const, step: 0, parents: {} };

describe("FallbackCheckpointer with pg_terminate_backend", () => {
  it("a write load loses no call while every pooled connection is terminated again and again", async () => {
    const appName = `tl_fb_kill_${process.pid}`;
    const pool = createPool({
      connectionString: TEST_DATABASE_URL,
      applicationName: appName,
      max: 6,
    });
    const primary = new PostgresCheckpointer(pool, { schema });
    const saver = new FallbackCheckpointer(primary, {
      probeIntervalMs: 50,
      probeMaxIntervalMs: 200,
    });
    const acked: Array<{ thread: string; id: string }> = [];
    let failures = 0;
    let kills = 0;
    try {
      // Counted, not timed: the workers run until the killer has terminated backends in ten
      // rounds (at least ten of them) and 120 checkpoints are acknowledged, however slow the
      // machine is.
      let killing = true;
      const worker = async (w: number) => {
        let parent: string | undefined;
        while (killing || acked.length < 120) {
          const cp = emptyCheckpoint();
          cp.id = uuid6(-1);
          cp.channel_values = { messages: [`w${w}-${acked.length}`] };
          cp.channel_versions = { messages: acked.length + 1 };
          const thread = `load-${w}`;
          try {
            const cfg = await saver.put(
              { configurable: { thread_id: thread, ...(parent ? { checkpoint_id: parent } : {}) } },
              cp,
              meta,
              cp.channel_versions,
            );
            await saver.putWrites(cfg, [["messages", `write-${cp.id}`]], "task", "~path");
            const back = await saver.getTuple(cfg);
            expect(back?.checkpoint.id).toBe(cp.id);
            parent = cp.id;
            acked.push({ thread, id: cp.id });
          } catch {
            failures++;
          }
        }
      };
      const killer = (async () => {
        for (let round = 0; round < 10 || kills < 10; round++) {
          // Each round waits for every worker's worth of acknowledged calls since the last one,
          // not only for 100 ms: on a slow machine a fixed rate killed each statement's retries
          // too, until one call ran out of attempts and the saver went to memory (CI, once).
          const since = acked.length;
          await new Promise((r) => setTimeout(r, 100));
          while (acked.length < since + 6) await new Promise((r) => setTimeout(r, 10));
          const { rowCount } = await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            [appName],
          );
          kills += rowCount ?? 0;
        }
        killing = false;
      })();
      await Promise.all([...Array.from({ length: 6 }, (_, w) => worker(w)), killer]);
      await saver.flush();
      expect(failures).toBe(0);
      expect(kills).toBeGreaterThanOrEqual(10);
      expect(acked.length).toBeGreaterThanOrEqual(120);
      expect(saver.status().pending).toBe(0);
      // Absorbed by retry-on-first-use, without ever needing the memory fallback.
      expect(saver.status().transitions).toBe(0);

      // Every acknowledged checkpoint is in Postgres with its write.
      const { rows } = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".checkpoints c
           JOIN "${schema}".checkpoint_writes w USING (thread_id, checkpoint_ns, checkpoint_id)
          WHERE c.checkpoint_id = ANY($1)`,
        [acked.map((a) => a.id)],
      );
      expect(Number(rows[0]!.n)).toBe(acked.length);
    } finally {
      await saver.close();
      await pool.end();
    }
  });
});

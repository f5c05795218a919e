import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachPoolErrorHandler } from "../../../src/db/pool.js";
import { migrate } from "../../../src/db/migrator.js";
import { RunQueue } from "../../../src/runs/queue.js";
import { ThreadStore } from "../../../src/runs/threads.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { pgbouncerUrl } from "../../helpers/pgbouncer.js";

// The run queue's named prepared statements (decision H30) left on behind PgBouncer in
// transaction mode: a statement prepared on one server connection is missing on the next
// (26000) or already there (42P05). Every call must still succeed, the queue switching to
// unnamed statements at the first such error, as the checkpointer does.
const admin = testPool(2);
const schema = uniqueSchema("tl_runs_bouncer");
const pools: pg.Pool[] = [];

beforeAll(async () => {
  await requirePostgres();
  await migrate(admin, { schema });
});

afterAll(async () => {
  for (const p of pools) await p.end();
  await dropSchema(admin, schema);
  await admin.end();
});

function bouncerPool(): pg.Pool {
  const pool = attachPoolErrorHandler(new pg.Pool({ connectionString: pgbouncerUrl(), max: 6 }));
  pools.push(pool);
  return pool;
}

describe("the run queue behind PgBouncer with prepared statements on", () => {
  it("runs started and ended concurrently from two queues all succeed", async () => {
    const queues = [bouncerPool(), bouncerPool()].map((p) => new RunQueue(p, schema));
    const threads = new ThreadStore(admin, schema);
    const ids = Array.from({ length: 24 }, () => randomUUID());
    for (const id of ids)
      await threads.create({
        threadId: id,
        metadata: { graph_id: "g" },
        ttlMinutes: null,
        ifExists: "raise",
      });
    for (let turn = 0; turn < 3; turn++) {
      const results = await Promise.allSettled(
        ids.map(async (threadId, i) => {
          const queue = queues[(i + turn) % 2]!;
          const workerId = `w${i}`;
          const started = await queue.startOnFreeThread(
            {
              threadId,
              runId: randomUUID(),
              assistantId: randomUUID(),
              metadata: {},
              kwargs: {},
              strategy: "reject",
            },
            { workerId, staleAfterMs: 30_000 },
            "g",
          );
          if (!started) throw new Error(`thread ${threadId} not free`);
          const end = await queue.finish(threadId, started.run.run_id, workerId, {
            status: "success",
            threadStatus: "idle",
            valuesText: JSON.stringify({ turn }),
            interrupts: {},
          });
          expect(end).toEqual({ ours: true, pending: false });
          return (await queue.get(threadId, started.run.run_id))?.status;
        }),
      );
      const failed = results.filter((r) => r.status === "rejected");
      expect(failed.map((r) => String(r.reason))).toEqual([]);
      expect(results.map((r) => (r as PromiseFulfilledResult<string>).value)).toEqual(
        ids.map(() => "success"),
      );
    }
  });
});

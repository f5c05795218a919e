import { deltaChannelHistoryTests, validate } from "@langchain/langgraph-checkpoint-validation";
import {
  emptyCheckpoint,
  type BaseCheckpointSaver,
  type CheckpointPendingWrite,
} from "@langchain/langgraph-checkpoint";
import { configSchema, type ThreadlineConfig } from "../../../src/config/schema.js";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { InstrumentedCheckpointer } from "../../../src/http/metrics.js";
import { TurnReadReuse } from "../../../src/http/turn-read.js";
import { FallbackCheckpointer } from "../../../src/checkpoint/fallback/checkpointer.js";
import { startService, type RunningService } from "../../../src/service/composition-root.js";
import {
  dropSchema,
  requirePostgres,
  TEST_DATABASE_URL,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";

// The official conformance suite against the saver stack the service really runs: startService
// builds PostgresCheckpointer -> FallbackCheckpointer -> the metrics wrapper -> the turn-read
// reuse of createApp, and every route and graph uses `app.threadline.checkpointer`. Each
// checkpointer is a fresh service on a fresh schema (an isolated store).
const admin = testPool(2);
const created: string[] = [];
const services = new Map<BaseCheckpointSaver, RunningService>();

function servedConfig(schema: string): ThreadlineConfig {
  return configSchema.parse({
    database: { url: TEST_DATABASE_URL, schema, pool: { size: 4 } },
    server: { port: 0, host: "127.0.0.1" },
    cleanup: { enabled: false },
    log: { level: "silent" },
  });
}

async function servedStack(prefix: string): Promise<BaseCheckpointSaver> {
  const schema = uniqueSchema(prefix);
  created.push(schema);
  const service = await startService(servedConfig(schema), { cleanup: false, webRoot: false });
  const saver = service.app.threadline.checkpointer;
  services.set(saver, service);
  return saver;
}

async function stopStack(saver: BaseCheckpointSaver): Promise<void> {
  const service = services.get(saver);
  services.delete(saver);
  await service?.shutdown("test done");
}

const initializer = {
  checkpointerName: "the served saver stack (turn reads -> metrics -> fallback -> Postgres)",
  beforeAll: requirePostgres,
  createCheckpointer: () => servedStack("tl_served_conf"),
  destroyCheckpointer: stopStack,
};

validate(initializer);
describe(initializer.checkpointerName, () => deltaChannelHistoryTests(initializer));

describe("the served saver stack", () => {
  let saver: BaseCheckpointSaver;
  beforeAll(async () => {
    await requirePostgres();
    saver = await servedStack("tl_served_order");
  });
  afterAll(() => stopStack(saver));

  it("is the turn-read reuse over the metrics wrapper over the fallback over PostgresCheckpointer", () => {
    expect(saver).toBeInstanceOf(TurnReadReuse);
    const metrics = (saver as unknown as { inner: unknown }).inner;
    expect(metrics).toBeInstanceOf(InstrumentedCheckpointer);
    const fallback = (metrics as { inner: unknown }).inner;
    expect(fallback).toBeInstanceOf(FallbackCheckpointer);
    expect((fallback as FallbackCheckpointer).status().mode).toBe("primary");
  });

  // Regression: the metrics wrapper once dropped `taskPath`, so the service stored task_path = ''
  // and pending writes came back in task-id order instead of the contract's task-path order.
  it("returns pending writes in taskPath order and stores each task_path in Postgres", async () => {
    const threadId = "served-task-path";
    const config = await saver.put(
      { configurable: { thread_id: threadId, checkpoint_ns: "" } },
      { ...emptyCheckpoint(), id: "1f0a0000-0000-6000-8000-000000000001" },
      { source: "loop", step: 0, parents: {} },
      {},
    );
    // Task ids ascend while task paths descend: only the paths give the expected order.
    const tasks = [
      { id: "task-a", path: "~__pregel_push, 2" },
      { id: "task-b", path: "~__pregel_push, 1" },
      { id: "task-c", path: "~__pregel_pull, node" },
    ];
    for (const t of tasks) await saver.putWrites(config, [["out", t.id]], t.id, t.path);

    const expected: CheckpointPendingWrite[] = [
      ["task-c", "out", "task-c"],
      ["task-b", "out", "task-b"],
      ["task-a", "out", "task-a"],
    ];
    expect((await saver.getTuple(config))?.pendingWrites).toEqual(expected);

    // Read back from Postgres by a saver of its own, not from any cache of the stack.
    const schema = created.at(-1)!;
    const direct = new PostgresCheckpointer(admin, { schema });
    expect((await direct.getTuple(config))?.pendingWrites).toEqual(expected);
    const { rows } = await admin.query<{ task_id: string; task_path: string }>(
      `SELECT task_id, task_path FROM "${schema}".checkpoint_writes WHERE thread_id = $1 ORDER BY task_id`,
      [threadId],
    );
    expect(rows).toEqual(tasks.map((t) => ({ task_id: t.id, task_path: t.path })));
  });
});

afterAll(async () => {
  for (const service of services.values()) await service.shutdown("test done");
  for (const schema of created.splice(0)) await dropSchema(admin, schema);
  await admin.end();
});

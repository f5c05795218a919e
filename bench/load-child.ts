/**
 * The child processes of the side-by-side HTTP load benchmark (bench/load.ts, decision H31): the
 * load generator and each service under test run in a process of their own, so that neither the
 * clients' CPU nor another side's idle service shares a V8 heap and an event loop with the side
 * being measured. Forked by {@link benchLoadSideBySide} with `--import tsx`; talks over IPC.
 *
 *   serve <threadline|memory|official|floor> <databaseUrl> <schema>
 *     starts the service on that side on a free loopback port, sends `{ url }`, and shuts down
 *     and exits on `{ type: "stop" }`.
 *   drive
 *     answers each `{ type: "drive", url, concurrency, durationMs }` with the
 *     {@link driveLoadRaw} result of that round; exits on `{ type: "stop" }`.
 *
 * Both answer `{ type: "cpu" }` with their `process.cpuUsage()`.
 */
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type BaseCheckpointSaver, MemorySaver } from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";
import { configSchema } from "../src/config/schema.js";
import { createChatModel } from "../src/graphs/chat/models.js";
import { createApp } from "../src/http/app.js";
import { startService } from "../src/service/composition-root.js";
import { driveLoadRaw, type LoadSide } from "./load.js";
import { FloorSaver, createFloorTable } from "./turn-floor.js";

/** A message from the parent. */
type Command =
  | { type: "stop" }
  | { type: "cpu" }
  | { type: "drive"; url: string; concurrency: number; durationMs: number };

function reply(message: unknown): void {
  process.send?.(message);
}

/** Starts one side; returns its URL and how to stop it. */
async function serve(
  side: LoadSide,
  databaseUrl: string,
  schema: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const config = configSchema.parse({
    database: { url: databaseUrl, schema, pool: { size: 20 } },
    server: { port: 0, host: "127.0.0.1", rateLimit: { max: 1_000_000 } },
    cleanup: { enabled: false },
    log: { level: "silent" },
  });
  if (side === "threadline") {
    const service = await startService(config, { cleanup: false, webRoot: false });
    return { url: service.url, stop: () => service.shutdown("bench done") };
  }
  const { model } = createChatModel(config.model);
  let pool: pg.Pool | undefined;
  let checkpointer: BaseCheckpointSaver;
  if (side === "official") {
    pool = new pg.Pool({ connectionString: databaseUrl, max: 20 });
    const official = new PostgresSaver(pool, undefined, { schema });
    await official.setup();
    checkpointer = official;
  } else if (side === "floor") {
    // The round trips and commits no durable saver can avoid, on a pool of the same size.
    const floorPool = new pg.Pool({ connectionString: databaseUrl, max: 20 });
    pool = floorPool;
    await floorPool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    const table = await createFloorTable(floorPool, schema);
    checkpointer = new FloorSaver(() => floorPool, table);
  } else {
    checkpointer = new MemorySaver();
  }
  const app = createApp({ config, checkpointer, model, webRoot: false });
  const server: Server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool?.end();
    },
  };
}

const [role, side, databaseUrl, schema] = process.argv.slice(2);
if (role === "serve") {
  const running = await serve(side as LoadSide, databaseUrl!, schema!);
  process.on("message", (command: Command) => {
    if (command.type === "cpu") {
      reply({ cpu: process.cpuUsage() });
      return;
    }
    if (command.type !== "stop") return;
    void running.stop().finally(() => process.disconnect());
  });
  reply({ url: running.url });
} else if (role === "drive") {
  process.on("message", (command: Command) => {
    if (command.type === "cpu") {
      reply({ cpu: process.cpuUsage() });
      return;
    }
    if (command.type === "stop") {
      process.disconnect();
      return;
    }
    if (command.type !== "drive") return;
    void driveLoadRaw(command.url, command.concurrency, command.durationMs).then(reply);
  });
  reply({ ready: true });
} else {
  throw new Error(`bench/load-child.ts: unknown role ${String(role)}`);
}

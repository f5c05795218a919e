import net from "node:net";
import { deltaChannelHistoryTests, validate } from "@langchain/langgraph-checkpoint-validation";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { FallbackCheckpointer } from "../../../../src/checkpoint/fallback/index.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import { createPool } from "../../../../src/db/pool.js";

// The official conformance suite against FallbackCheckpointer in fallback mode from the start:
// its primary points at a port nobody listens on, so every call is served from memory. Each
// checkpointer has its own memory, so stores are isolated.
let pool: pg.Pool;

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  pool = createPool({
    connectionString: `postgres://postgres@127.0.0.1:${await closedPort()}/test`,
    connectTimeoutMs: 500,
  });
});
afterAll(async () => {
  await pool.end();
});

const initializer = {
  checkpointerName: "FallbackCheckpointer (fallback mode)",
  async createCheckpointer() {
    const primary = new PostgresCheckpointer(pool, {
      schema: "tl_unreachable",
      retry: { attempts: 1 },
    });
    const saver = new FallbackCheckpointer(primary, {
      retry: { attempts: 1 },
      probeIntervalMs: 60_000,
    });
    await saver.start();
    expect(saver.status().mode).toBe("fallback");
    return saver;
  },
  async destroyCheckpointer(saver: FallbackCheckpointer) {
    expect(saver.status().mode).toBe("fallback");
    await saver.close();
  },
};

validate(initializer);
describe(initializer.checkpointerName, () => deltaChannelHistoryTests(initializer));

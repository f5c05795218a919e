import type pg from "pg";
import {
  FallbackCheckpointer,
  type FallbackCheckpointerOptions,
} from "../../../../src/checkpoint/fallback/index.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import { createPool } from "../../../../src/db/pool.js";
import { TEST_DATABASE_URL } from "../../../helpers/db.js";
import type { TcpProxy } from "../../../helpers/tcp-proxy.js";

/**
 * A PostgresCheckpointer whose pool goes through the proxy, wrapped in a FallbackCheckpointer.
 * `target` is the URL the proxy forwards to (default the test database; a pooler's URL puts the
 * pooler behind the proxy), with prepared statements off for a transaction-mode pooler.
 */
export function saverBehind(
  proxy: TcpProxy,
  schema: string,
  options: FallbackCheckpointerOptions = {},
  applicationName = "tl_fallback_test",
  target: { url: string; preparedStatements: boolean } = {
    url: TEST_DATABASE_URL,
    preparedStatements: true,
  },
): { pool: pg.Pool; primary: PostgresCheckpointer; fallback: FallbackCheckpointer } {
  const pool = createPool({
    connectionString: proxy.url(target.url),
    applicationName,
    max: 4,
    connectTimeoutMs: 1_000,
  });
  const primary = new PostgresCheckpointer(pool, {
    schema,
    preparedStatements: target.preparedStatements,
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
  });
  const fallback = new FallbackCheckpointer(primary, {
    probeIntervalMs: 100,
    probeMaxIntervalMs: 400,
    operationTimeoutMs: 3_000,
    setup: () => primary.setup(),
    ...options,
  });
  return { pool, primary, fallback };
}

/** Waits until `predicate` holds (polling), or fails after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 15_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

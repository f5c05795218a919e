import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type { Registry } from "prom-client";
import { FallbackCheckpointer, PostgresCheckpointer } from "../checkpoint/index.js";
import { registerFallbackMetrics } from "../checkpoint/fallback/metrics.js";
import { fallbackCheckpointerOptions, postgresCheckpointerOptions } from "../config/options.js";
import type { ThreadlineConfig } from "../config/schema.js";
import type { Database } from "../db/database.js";
import { probeFreshConnection } from "../db/probe.js";
import { silentLogger, type Logger } from "../logger.js";

/** The savers the service composes; `createApp` wraps `checkpointer` in its metrics saver. */
export interface ServiceSavers {
  /** The PostgresCheckpointer on `db.pool`. */
  primary: PostgresCheckpointer;
  /** The fallback in front of `primary`, started; absent when `fallback.enabled` is false. */
  fallback: FallbackCheckpointer | undefined;
  /** What the service serves: `fallback` when there is one, `primary` otherwise. */
  checkpointer: BaseCheckpointSaver;
}

/** Options of {@link buildSavers}. */
export interface BuildSaversOptions {
  logger?: Logger;
  /** Where the fallback's metrics are registered. Default: not registered. */
  registry?: Registry;
}

/**
 * Builds the saver stack `threadline serve` runs: a PostgresCheckpointer on `db.pool` behind a
 * started FallbackCheckpointer when `fallback.enabled`. Migrations are the caller's (the service
 * may start while Postgres is down; the fallback installs the schema once it answers). The caller
 * closes `fallback` (then the database).
 */
export async function buildSavers(
  config: ThreadlineConfig,
  db: Database,
  options: BuildSaversOptions = {},
): Promise<ServiceSavers> {
  const logger = options.logger ?? silentLogger;
  const schema = config.database.schema;
  const primary = new PostgresCheckpointer(db.pool, {
    ...postgresCheckpointerOptions(config),
    logger,
  });
  if (!config.fallback.enabled) return { primary, fallback: undefined, checkpointer: primary };
  const fallback = new FallbackCheckpointer(primary, {
    ...fallbackCheckpointerOptions(config),
    setup: () => primary.setup(),
    // Probe on a connection of its own: pooled ones may be black-holed after a network fault.
    ...(db.kind === "postgres" ? { probe: () => probeFreshConnection(db.pool, schema) } : {}),
    logger,
  });
  try {
    await fallback.start();
  } catch (err) {
    await fallback.close().catch(() => undefined);
    throw err;
  }
  if (options.registry) registerFallbackMetrics(options.registry, fallback);
  return { primary, fallback, checkpointer: fallback };
}

import { CommanderError, Option, type Command } from "commander";
import { resolve } from "node:path";
import pino from "pino";
import { parseLeafValue } from "../config/keys.js";
import { loadConfig } from "../config/load.js";
import type { ThreadlineConfig } from "../config/schema.js";
import { checkConnectionString } from "../db/database.js";
import type { Logger } from "../logger.js";
import { describeFailure, EXIT, reportFailure, textLogger, UsageError } from "./output.js";

export { EXIT, UsageError } from "./output.js";

/** Options every command accepts (README, "Command line"; a public contract). */
export interface CommonOptions {
  config?: string;
  databaseUrl?: string;
  schema?: string;
  /** Ops commands only: act on the embedded development database (see `addDatabaseChoice`). */
  embedded?: boolean;
}

/** Adds `--config`, `--database-url` and `--schema` to a command. */
export function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--config <path>", "config file (default ./config.yaml or THREADLINE_CONFIG)"),
    )
    .addOption(
      new Option("--database-url <url>", "PostgreSQL connection string (default DATABASE_URL)"),
    )
    .addOption(new Option("--schema <name>", "Postgres schema holding the Threadline tables"));
}

/**
 * Adds `--embedded` to an ops command (migrate, cleanup, import-redis). Those commands refuse to
 * act on the embedded development database unless asked: an operator who forgot DATABASE_URL
 * would otherwise be told "up to date" about the wrong database.
 */
export function addDatabaseChoice(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      "--embedded",
      "act on the embedded development database (database.embedded.dataDir) instead of DATABASE_URL",
    ),
  );
}

/** Loads config with flag overrides applied last (defaults < file < env < flags). */
export function loadCliConfig(
  opts: CommonOptions,
  overrides: Record<string, unknown> = {},
): ThreadlineConfig {
  const database: Record<string, unknown> = {};
  if (opts.embedded === true) {
    if (opts.databaseUrl !== undefined) {
      throw new UsageError("--embedded and --database-url exclude each other: drop one of them");
    }
    // The flag wins over DATABASE_URL in the environment (flags come last); "" means embedded.
    database.url = "";
  }
  if (opts.databaseUrl !== undefined) database.url = opts.databaseUrl;
  if (opts.schema !== undefined) database.schema = opts.schema;
  return loadConfig(opts.config, {
    overrides: { ...overrides, database: { ...database, ...(overrides.database as object) } },
  });
}

/**
 * The value of a flag that sets the config key `path`, validated by that key's schema (the one
 * config.yaml and the environment go through), so a flag accepts exactly what the key accepts.
 * Durations come back in ms. A bad value is a UsageError (exit 2) naming the flag and the key.
 */
export function configFlag(flag: string, path: string, raw: string): unknown {
  const parsed = parseLeafValue(path, raw);
  if (parsed.ok) return parsed.value;
  const got = parsed.problem.includes(JSON.stringify(raw)) ? "" : `; got ${JSON.stringify(raw)}`;
  throw new UsageError(`${flag} must be a valid ${path}: ${parsed.problem}${got}`);
}

/**
 * For ops commands: checks that the database to act on was named (a URL, or `--embedded`) and
 * that the URL parses, before anything connects.
 *
 * @throws UsageError without a URL and without `--embedded`
 * @throws ConfigError for a URL that is not a PostgreSQL connection string
 */
export function requireDatabaseChoice(config: ThreadlineConfig, opts: CommonOptions): void {
  const url = config.database.url;
  if (url) {
    checkConnectionString(url);
    if (config.database.directUrl)
      checkConnectionString(config.database.directUrl, "database.directUrl");
    return;
  }
  if (opts.embedded !== true) {
    throw new UsageError(
      `no database given: set DATABASE_URL or pass --database-url postgres://user:password@host:5432/db (or pass --embedded to act on the embedded development database in ${resolve(config.database.embedded.dataDir)})`,
    );
  }
}

/**
 * The log of an ops command on stderr: plain text lines for a person, pino's JSON lines with
 * `--json` (stdout then carries only the command's one JSON object).
 */
export function createCliLogger(
  level: ThreadlineConfig["log"]["level"] = "info",
  options: { json?: boolean } = {},
): Logger {
  if (options.json === true) return createServiceLogger(level);
  return textLogger(level, (line) => process.stderr.write(line));
}

/** The service's log: pino JSON lines on stderr (what log collectors parse). */
export function createServiceLogger(
  level: ThreadlineConfig["log"]["level"] = "info",
): Logger & pino.Logger {
  return pino({ level, base: { service: "threadline" } }, pino.destination({ fd: 2, sync: true }));
}

/**
 * Runs a command body and turns its outcome into the contract's exit codes: 0 success,
 * 1 operational failure, 2 usage or configuration error. A failure is printed as one readable
 * line on stderr (a stack only for an unexpected error); with `json`, also as
 * `{"error":{"code","message"}}` on stdout.
 */
export async function runCommand(
  body: () => Promise<number | void>,
  options: { json?: boolean } = {},
): Promise<void> {
  try {
    const code = await body();
    process.exitCode = code ?? EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) throw err;
    const failure = describeFailure(err);
    reportFailure(failure, options.json === true);
    process.exitCode = failure.exitCode;
  }
}

import { CommanderError, Option, type Command } from "commander";
import pino from "pino";
import { parseLeafValue } from "../config/keys.js";
import { loadConfig } from "../config/load.js";
import type { ThreadlineConfig } from "../config/schema.js";
import { isThreadlineError } from "../errors.js";
import type { Logger } from "../logger.js";

/** Options every command accepts (README, "Command line"; a public contract). */
export interface CommonOptions {
  config?: string;
  databaseUrl?: string;
  schema?: string;
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

/** Loads config with flag overrides applied last (defaults < file < env < flags). */
export function loadCliConfig(
  opts: CommonOptions,
  overrides: Record<string, unknown> = {},
): ThreadlineConfig {
  const database: Record<string, unknown> = {};
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

/** A pino logger writing JSON lines to stderr, so stdout stays free for `--json`. */
export function createCliLogger(
  level: ThreadlineConfig["log"]["level"] = "info",
): Logger & pino.Logger {
  return pino({ level, base: { service: "threadline" } }, pino.destination({ fd: 2, sync: true }));
}

/** Exit codes of the CLI contract. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A usage error (bad flag value): exit code 2 with the message. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Runs a command body and turns its outcome into the contract's exit codes: 0 success,
 * 1 operational failure, 2 usage or configuration error. Errors are printed to stderr as one
 * readable line (never a stack trace for expected errors).
 */
export async function runCommand(body: () => Promise<number | void>): Promise<void> {
  try {
    const code = await body();
    process.exitCode = code ?? EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError || isThreadlineError(err, "CONFIG_INVALID", "INVALID_INPUT")) {
      process.stderr.write(`threadline: ${(err as Error).message}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    if (err instanceof CommanderError) throw err;
    const message = isThreadlineError(err)
      ? `${err.code}: ${err.message}`
      : String((err as Error)?.stack ?? err);
    process.stderr.write(`threadline: ${message}\n`);
    process.exitCode = EXIT.failure;
  }
}

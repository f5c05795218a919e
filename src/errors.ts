/**
 * The closed set of error codes Threadline raises. Each one is stable and listed in the README;
 * callers branch on `code`, never on message text.
 */
export const ERROR_CODES = [
  /** Configuration file or environment is invalid (exit code 2 in the CLI). */
  "CONFIG_INVALID",
  /** A caller passed a value Threadline cannot accept (bad schema name, missing thread_id, ...). */
  "INVALID_INPUT",
  /** The database cannot be reached (connection refused, reset, timeout, shutdown). */
  "DB_UNAVAILABLE",
  /** A statement failed for a reason that is not about reachability (constraint, syntax, ...). */
  "DB_ERROR",
  /** A serialization failure or deadlock: the operation may be retried as a whole. */
  "DB_CONFLICT",
  /** A statement exceeded `statement_timeout` or was cancelled. */
  "DB_TIMEOUT",
  /** The Threadline tables are missing: run `threadline migrate` or `setup()`. */
  "SCHEMA_NOT_INSTALLED",
  /** A migration that was already applied has been edited since (checksum mismatch). */
  "MIGRATION_CHECKSUM_MISMATCH",
  /** The database was migrated by a newer Threadline than this one. */
  "SCHEMA_TOO_NEW",
  /** A migration numbered below one already applied is not applied (files run in number order). */
  "MIGRATION_OUT_OF_ORDER",
  /** A thread or checkpoint does not exist. */
  "NOT_FOUND",
  /** The resource exists already, or is busy with another run (HTTP 409). */
  "CONFLICT",
  /** Data read from storage cannot be decoded. */
  "DATA_CORRUPT",
  /** The in-memory fallback is full: new writes are refused rather than evicting data. */
  "FALLBACK_FULL",
  /** A record read by the Redis importer cannot be converted. */
  "IMPORT_RECORD_INVALID",
  /** The Redis to import from cannot be reached (refused, unknown host, timeout). */
  "REDIS_UNAVAILABLE",
  /** The service's address is taken by another process (EADDRINUSE). */
  "PORT_IN_USE",
  /** `migrate --distribute` on a database without the Citus extension. */
  "CITUS_NOT_INSTALLED",
  /** The caller is not authenticated. */
  "UNAUTHORIZED",
  /** Too many requests for this key. */
  "RATE_LIMITED",
  /** The service is shutting down. */
  "SHUTTING_DOWN",
  /** The model provider failed. */
  "MODEL_ERROR",
  /** Anything unexpected; details go to the log, never to clients. */
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ThreadlineErrorOptions {
  cause?: unknown;
  /** Extra structured facts for logs (never message contents or secrets). */
  details?: Record<string, unknown>;
}

/** Base class of every error Threadline throws on purpose. */
export class ThreadlineError extends Error {
  override readonly name: string = "ThreadlineError";
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ThreadlineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/** Raised by `loadConfig`; `problems` lists every issue with its remedy. */
export class ConfigError extends ThreadlineError {
  override readonly name = "ConfigError";
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options: ThreadlineErrorOptions = {}) {
    super(
      "CONFIG_INVALID",
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
      options,
    );
    this.problems = problems;
  }
}

/** True when `err` is a ThreadlineError, optionally with one of the given codes. */
export function isThreadlineError(err: unknown, ...codes: ErrorCode[]): err is ThreadlineError {
  return err instanceof ThreadlineError && (codes.length === 0 || codes.includes(err.code));
}

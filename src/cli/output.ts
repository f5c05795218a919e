import type { ThreadlineConfig } from "../config/schema.js";
import { ConfigError, isThreadlineError } from "../errors.js";
import type { Logger } from "../logger.js";

/** Exit codes of the CLI contract. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A usage error (bad flag value, missing flag): exit code 2 with the message. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

type Level = ThreadlineConfig["log"]["level"];

const SEVERITY: Record<Level, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

function formatValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=,()]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value) ?? String(value);
}

/**
 * The log of a command run by a person: one plain line per event on stderr,
 * `threadline: [warning: |error: ]message (key=value, ...)`. `--json` runs and the service log
 * pino's JSON lines instead.
 */
export function textLogger(level: Level, write: (line: string) => void): Logger {
  const at = (severity: number, prefix: string) => (obj: object, msg?: string) => {
    if (severity < SEVERITY[level]) return;
    const fields = Object.entries(obj)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${formatValue(v)}`);
    const rest = fields.length > 0 ? ` (${fields.join(", ")})` : "";
    write(`threadline: ${prefix}${msg ?? ""}${rest}\n`);
  };
  return {
    error: at(SEVERITY.error, "error: "),
    warn: at(SEVERITY.warn, "warning: "),
    info: at(SEVERITY.info, ""),
    debug: at(SEVERITY.debug, "debug: "),
  };
}

/** How a failed command is reported: its stable code, one readable message, its exit code. */
export interface Failure {
  /** A Threadline error code, `USAGE_ERROR` for a bad command line, `INTERNAL` otherwise. */
  code: string;
  message: string;
  exitCode: number;
  /** For unexpected errors only: the stack, printed for a bug report. */
  stack?: string;
}

/** Classifies an error thrown by a command (CommanderError is the caller's to handle). */
export function describeFailure(err: unknown): Failure {
  if (err instanceof UsageError) {
    return { code: "USAGE_ERROR", message: err.message, exitCode: EXIT.usage };
  }
  if (err instanceof ConfigError) {
    // One problem fits on one line; several are listed, one per line, each with its fix.
    const message =
      err.problems.length === 1 ? `invalid configuration: ${err.problems[0]}` : err.message;
    return { code: err.code, message, exitCode: EXIT.usage };
  }
  if (isThreadlineError(err)) {
    // Deterministic: the command or the database it names must change, a retry cannot help.
    const usage =
      err.code === "CONFIG_INVALID" ||
      err.code === "INVALID_INPUT" ||
      err.code === "CITUS_NOT_INSTALLED";
    return {
      code: err.code,
      message: err.message,
      exitCode: usage ? EXIT.usage : EXIT.failure,
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    code: "INTERNAL",
    message,
    exitCode: EXIT.failure,
    ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
  };
}

/**
 * Prints a failure: one line on stderr (`threadline: CODE: message`, the stack only for an
 * unexpected error), and with `--json` also `{"error":{"code","message"}}` on stdout, so a
 * script that parses stdout always gets one JSON object.
 */
export function reportFailure(failure: Failure, json: boolean): void {
  const prefix =
    failure.code === "USAGE_ERROR" || failure.exitCode === EXIT.usage ? "" : `${failure.code}: `;
  process.stderr.write(`threadline: ${prefix}${failure.message}\n`);
  if (failure.stack !== undefined && !json) process.stderr.write(`${failure.stack}\n`);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ error: { code: failure.code, message: failure.message } })}\n`,
    );
  }
}

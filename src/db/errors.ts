import { ThreadlineError, type ErrorCode } from "../errors.js";

/** Socket-level error codes that mean "the server cannot be reached right now". */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "ENOTCONN",
  "ESHUTDOWN",
]);

/** Messages node-postgres uses for connection failures that carry no code. */
const CONNECTION_MESSAGES = [
  "Connection terminated",
  "connection timeout",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error",
  "Client was closed and is not queryable",
  "Connection terminated unexpectedly",
  "terminating connection",
  // Client-side query_timeout (see createPool): the server did not answer at all, which after
  // statement_timeout has had its chance means the network or the server is gone.
  "Query read timeout",
  "server closed the connection unexpectedly",
  "the database system is starting up",
  "the database system is shutting down",
  "the database system is in recovery mode",
];

/**
 * Maps a SQLSTATE (or socket error code) to a Threadline error code. The one place that knows
 * Postgres error classes; everything else branches on the returned code.
 */
export function codeForSqlState(sqlState: string | undefined): ErrorCode {
  if (!sqlState) return "DB_ERROR";
  if (SOCKET_CODES.has(sqlState)) return "DB_UNAVAILABLE";
  const cls = sqlState.slice(0, 2);
  switch (sqlState) {
    case "57P01": // admin_shutdown (pg_terminate_backend)
    case "57P02": // crash_shutdown
    case "57P03": // cannot_connect_now (starting up / recovery)
    case "57P05": // idle_session_timeout: the server closed an idle session; a new one works
    case "25P03": // idle_in_transaction_session_timeout: the session is gone, a new one works
    case "53300": // too_many_connections
    case "53400": // configuration_limit_exceeded
    case "58000": // system_error
    case "58030": // io_error
      return "DB_UNAVAILABLE";
    case "57014": // query_canceled (statement_timeout)
    case "55P03": // lock_not_available (lock_timeout)
      return "DB_TIMEOUT";
    case "40001": // serialization_failure
    case "40P01": // deadlock_detected
      return "DB_CONFLICT";
    case "42P01": // undefined_table
    case "3F000": // invalid_schema_name
    case "42883": // undefined_function
      return "SCHEMA_NOT_INSTALLED";
    case "22P05": // untranslatable_character (NUL in jsonb)
    case "22P02": // invalid_text_representation
    case "22021": // character_not_in_repertoire
      return "INVALID_INPUT";
  }
  if (cls === "08") return "DB_UNAVAILABLE"; // connection_exception
  // Class 28 (invalid authorization) is a configuration problem, not an outage: it must fail
  // loudly rather than send the fallback into memory mode.
  return "DB_ERROR";
}

interface PgLikeError {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  constraint?: unknown;
  severity?: unknown;
}

/** True when the error means the database is unreachable (never constraint or serialization). */
export function isConnectionError(err: unknown): boolean {
  return classifyDbError(err) === "DB_UNAVAILABLE";
}

/**
 * What a connection pooler (PgBouncer) answers to a startup parameter it does not forward:
 * `FATAL 08P01 unsupported startup parameter: statement_timeout`. Class 08 would read as an
 * outage; it is a configuration error that no retry or fallback can fix.
 */
const UNSUPPORTED_STARTUP_PARAMETER =
  /unsupported startup parameter(?: in options)?: ?([A-Za-z_.]+)?/;

/** The startup parameter a pooler refused, when `err` is that refusal. */
export function refusedStartupParameter(err: unknown): string | undefined {
  if (err === null || typeof err !== "object") return undefined;
  const message = (err as PgLikeError).message;
  if (typeof message !== "string") return undefined;
  const match = UNSUPPORTED_STARTUP_PARAMETER.exec(message);
  return match ? (match[1] ?? "") : undefined;
}

/** The config key that makes Threadline send each startup parameter. */
const STARTUP_PARAMETER_SETTINGS: Record<string, string> = {
  statement_timeout: "database.statementTimeout",
  application_name: "database.applicationName",
};

/** The Threadline code for any error thrown by `pg`. */
export function classifyDbError(err: unknown): ErrorCode {
  if (err instanceof ThreadlineError) return err.code;
  if (err === null || typeof err !== "object") return "DB_ERROR";
  if (refusedStartupParameter(err) !== undefined) return "CONFIG_INVALID";
  const e = err as PgLikeError;
  if (typeof e.code === "string") {
    const mapped = codeForSqlState(e.code);
    if (mapped !== "DB_ERROR" || /^[0-9A-Z]{5}$/.test(e.code)) return mapped;
  }
  const message = typeof e.message === "string" ? e.message : "";
  if (CONNECTION_MESSAGES.some((m) => message.includes(m))) return "DB_UNAVAILABLE";
  // AggregateError from net.connect with several addresses (IPv4 + IPv6 loopback).
  const nested = (err as { errors?: unknown }).errors;
  if (Array.isArray(nested) && nested.length > 0 && nested.every((n) => isConnectionError(n))) {
    return "DB_UNAVAILABLE";
  }
  return "DB_ERROR";
}

/**
 * Wraps a `pg` error in a ThreadlineError with a stable code. The SQL text and parameters are
 * deliberately not copied: they may hold conversation contents, which must not reach logs.
 */
export function toThreadlineError(err: unknown, what: string): ThreadlineError {
  if (err instanceof ThreadlineError) return err;
  const refused = refusedStartupParameter(err);
  if (refused !== undefined) {
    const parameter = refused === "" ? "a startup parameter" : refused;
    const setting = STARTUP_PARAMETER_SETTINGS[refused];
    return new ThreadlineError(
      "CONFIG_INVALID",
      `the database (a connection pooler such as PgBouncer) refuses the startup parameter ${parameter}` +
        (setting ? `, which Threadline sends for ${setting}` : "") +
        `: add "ignore_startup_parameters = ${refused || "<name>"}" to pgbouncer.ini (and set the value in PgBouncer or on the role), or point DATABASE_URL at Postgres directly`,
      { cause: err, details: { sqlState: "08P01" } },
    );
  }
  const code = classifyDbError(err);
  const e = (err ?? {}) as PgLikeError;
  const sqlState = typeof e.code === "string" ? e.code : undefined;
  const reason = typeof e.message === "string" ? e.message : String(err);
  const hint =
    code === "SCHEMA_NOT_INSTALLED"
      ? " (run `threadline migrate` or call setup() first)"
      : code === "DB_UNAVAILABLE"
        ? " (is Postgres running and reachable?)"
        : "";
  return new ThreadlineError(code, `${what} failed: ${reason}${hint}`, {
    cause: err,
    details: {
      ...(sqlState ? { sqlState } : {}),
      ...(typeof e.constraint === "string" ? { constraint: e.constraint } : {}),
    },
  });
}

import type { ErrorRequestHandler } from "express";
import { ThreadlineError, type ErrorCode } from "../errors.js";
import type { Logger } from "../logger.js";

/** HTTP status of each Threadline error code: the one place that maps codes to statuses. */
const STATUS: Record<ErrorCode, number> = {
  CONFIG_INVALID: 500,
  INVALID_INPUT: 400,
  DB_UNAVAILABLE: 503,
  DB_ERROR: 500,
  DB_CONFLICT: 503,
  DB_TIMEOUT: 503,
  SCHEMA_NOT_INSTALLED: 503,
  MIGRATION_CHECKSUM_MISMATCH: 500,
  SCHEMA_TOO_NEW: 500,
  MIGRATION_OUT_OF_ORDER: 500,
  NOT_FOUND: 404,
  CONFLICT: 409,
  DATA_CORRUPT: 500,
  FALLBACK_FULL: 503,
  IMPORT_RECORD_INVALID: 400,
  REDIS_UNAVAILABLE: 503,
  PORT_IN_USE: 500,
  CITUS_NOT_INSTALLED: 500,
  UNAUTHORIZED: 401,
  RATE_LIMITED: 429,
  SHUTTING_DOWN: 503,
  MODEL_ERROR: 502,
  INTERNAL: 500,
};

/**
 * What clients may read for a server-side failure. Internal messages can name hosts, tables or
 * SQL, so 5xx responses get a fixed text per code and the details go to the log.
 */
const PUBLIC_5XX: Partial<Record<ErrorCode, string>> = {
  DB_UNAVAILABLE: "the database is unavailable; retry later",
  DB_CONFLICT: "the request conflicted with another one; retry",
  DB_TIMEOUT: "the database did not answer in time; retry later",
  SCHEMA_NOT_INSTALLED: "the database schema is not installed; run `threadline migrate`",
  FALLBACK_FULL: "the service is degraded and cannot accept writes; retry later",
  SHUTTING_DOWN: "the service is shutting down; retry",
  MODEL_ERROR: "the model provider failed",
};

/** The HTTP status for a Threadline error code. */
export function httpStatusFor(code: ErrorCode): number {
  return STATUS[code];
}

/** The JSON error body of the service: `{ error: { code, message } }`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Converts any thrown value into a status and a body that is safe to send to a client. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody; internal: boolean } {
  const bodyParser = bodyParserError(err);
  if (bodyParser) return { ...bodyParser, internal: false };
  if (err instanceof ThreadlineError) {
    const status = httpStatusFor(err.code);
    if (status < 500)
      return { status, body: { error: { code: err.code, message: err.message } }, internal: false };
    const message = PUBLIC_5XX[err.code] ?? "internal error";
    return {
      status,
      body: { error: { code: PUBLIC_5XX[err.code] ? err.code : "INTERNAL", message } },
      internal: status === 500,
    };
  }
  return {
    status: 500,
    body: { error: { code: "INTERNAL", message: "internal error" } },
    internal: true,
  };
}

/**
 * Client errors raised before a route runs: express.json (body-parser) errors carry `type` and a
 * 4xx `status`; a body that fails to inflate (`content-encoding: gzip` over non-gzip bytes) is a
 * zlib error with status 400 and no type; a path with bad percent-encoding (`%E0%A4%A`) is the
 * router's URIError with status 400. All are the client's fault: 4xx `INVALID_INPUT`, never 500.
 */
function bodyParserError(err: unknown): { status: number; body: ErrorBody } | undefined {
  if (err === null || typeof err !== "object") return undefined;
  const e = err as { type?: unknown; status?: unknown; limit?: unknown; code?: unknown };
  if (typeof e.status !== "number") return undefined;
  if (typeof e.type !== "string") {
    if (e.status < 400 || e.status >= 500) return undefined;
    const message =
      err instanceof URIError
        ? "the URL path is not valid percent-encoded UTF-8"
        : typeof e.code === "string" && e.code.startsWith("Z_")
          ? "request body does not match its content-encoding"
          : "request rejected";
    return { status: e.status, body: { error: { code: "INVALID_INPUT", message } } };
  }
  if (e.type === "entity.too.large") {
    const limit = typeof e.limit === "number" ? ` of ${e.limit} bytes` : "";
    return {
      status: 413,
      body: { error: { code: "INVALID_INPUT", message: `request body exceeds the limit${limit}` } },
    };
  }
  if (e.type === "entity.parse.failed") {
    return {
      status: 400,
      body: { error: { code: "INVALID_INPUT", message: "request body is not valid JSON" } },
    };
  }
  if (e.status >= 400 && e.status < 500) {
    return {
      status: e.status,
      body: { error: { code: "INVALID_INPUT", message: `request body rejected (${e.type})` } },
    };
  }
  return undefined;
}

/**
 * The service's single error middleware: maps ThreadlineError codes to statuses, answers JSON,
 * and logs server-side failures with their cause (never request bodies).
 */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    if (res.headersSent) {
      // A streaming route owns its response once headers are out; just make sure it ends.
      res.end();
      return;
    }
    const { status, body, internal } = toHttpError(err);
    if (status >= 500) {
      logger[internal ? "error" : "warn"](
        { err: describeError(err), status },
        internal ? "request failed" : "request failed (dependency)",
      );
    }
    if (status === 503 || status === 429) res.setHeader("retry-after", "1");
    res.status(status).json(body);
    void next;
  };
}

/** A log-safe description of an error: name, code, message and cause chain, no query text. */
export function describeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { value: String(err) };
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  if (err instanceof ThreadlineError) {
    out.code = err.code;
    if (err.details) out.details = err.details;
  } else if (typeof (err as { code?: unknown }).code === "string") {
    out.code = (err as unknown as { code: string }).code;
  }
  if (err.stack) out.stack = err.stack;
  if (err.cause !== undefined) out.cause = describeError(err.cause);
  return out;
}

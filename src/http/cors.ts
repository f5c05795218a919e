import type { NextFunction, Request, RequestHandler, Response } from "express";

/** Options of {@link corsMiddleware} (`server.cors` in config.yaml). */
export interface CorsOptions {
  /** Allowed origins (`scheme://host[:port]`), or `*` for any. Empty: the middleware does nothing. */
  origins: readonly string[];
  /** Preflight cache lifetime in milliseconds. */
  maxAgeMs: number;
}

/**
 * Response headers a browser script may read: the Agent Server SDK reads the run id from
 * `Content-Location`; the AI SDK stream marker, the request id and the rate-limit headers help
 * clients and their error reports.
 */
export const CORS_EXPOSED_HEADERS = [
  "Content-Location",
  "Location",
  "X-Request-Id",
  "X-Vercel-AI-UI-Message-Stream",
  "RateLimit",
  "RateLimit-Policy",
  "Retry-After",
  "X-Pagination-Total",
  "X-Pagination-Next",
].join(", ");

const ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE";
/** Asked-for request headers are echoed when they look like header names, else these. */
const DEFAULT_ALLOWED_HEADERS =
  "Authorization, Content-Type, X-Api-Key, X-Request-Id, Last-Event-ID";
const HEADER_LIST_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/**
 * CORS for every route of the service, mounted on the app before any router (so the chat API,
 * the Agent Server routes, health and metrics, and their error answers all carry it). A request
 * from an allowed origin gets `Access-Control-Allow-Origin` and the exposed headers; a preflight
 * (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is answered 204 here,
 * before authentication (browsers send preflights without credentials). Other origins get no CORS
 * headers, so the browser blocks them. Credentials mode (cookies) is not offered: the service
 * authenticates with bearer keys, which a script sends as an ordinary header.
 */
export function corsMiddleware(options: CorsOptions): RequestHandler {
  const any = options.origins.includes("*");
  const allowed = new Set(options.origins.map((o) => o.toLowerCase()));
  const maxAge = String(Math.floor(options.maxAgeMs / 1000));
  return (req: Request, res: Response, next: NextFunction) => {
    if (allowed.size === 0) return next();
    // The answer depends on the Origin header: caches must keep one copy per origin.
    res.vary("Origin");
    const origin = req.headers.origin;
    if (typeof origin !== "string" || !(any || allowed.has(origin.toLowerCase()))) return next();
    res.setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
    const preflight =
      req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (!preflight) {
      res.setHeader("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS);
      return next();
    }
    const asked = req.headers["access-control-request-headers"];
    res.vary("Access-Control-Request-Headers");
    res.setHeader("Access-Control-Allow-Methods", ALLOWED_METHODS);
    res.setHeader(
      "Access-Control-Allow-Headers",
      typeof asked === "string" && HEADER_LIST_RE.test(asked.trim())
        ? asked.trim()
        : DEFAULT_ALLOWED_HEADERS,
    );
    res.setHeader("Access-Control-Max-Age", maxAge);
    // Chromium's Private Network Access asks before a public page may call a private address.
    if (req.headers["access-control-request-private-network"] === "true")
      res.setHeader("Access-Control-Allow-Private-Network", "true");
    res.status(204).end();
  };
}

import { createHash, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { ThreadlineError } from "../errors.js";

/** The caller behind a request: which configured key it presented (as a hash, never the key). */
export interface Principal {
  /** sha256 of the API key, hex: the thread owner recorded in Postgres. */
  keyHash: string;
  /** First 12 hex characters of the hash: enough to tell keys apart in logs and rate limits. */
  keyId: string;
}

/** sha256 of an API key, hex. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Checks bearer tokens against the configured keys. */
export interface ApiKeyAuth {
  /** False when no keys are configured: the API is open and threads have no owner. */
  readonly enabled: boolean;
  /** The principal for an `Authorization` header value, or undefined when it matches no key. */
  authenticate(header: string | undefined): Principal | undefined;
}

/**
 * Builds the key check. Tokens are compared as sha256 digests with `timingSafeEqual`, against
 * every configured key without stopping at a match, so neither the key's length nor which key
 * matched shows in the response time.
 */
export function createApiKeyAuth(keys: readonly string[]): ApiKeyAuth {
  const digests = keys.map((k) => createHash("sha256").update(k, "utf8").digest());
  return {
    enabled: digests.length > 0,
    authenticate(header) {
      if (digests.length === 0 || header === undefined) return undefined;
      const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
      if (!match) return undefined;
      const presented = createHash("sha256").update(match[1]!, "utf8").digest();
      let found: Buffer | undefined;
      for (const digest of digests) {
        if (timingSafeEqual(presented, digest) && found === undefined) found = digest;
      }
      if (!found) return undefined;
      const keyHash = found.toString("hex");
      return { keyHash, keyId: keyHash.slice(0, 12) };
    },
  };
}

/** Locals the service's middleware sets on `res.locals`. */
export interface ServiceLocals {
  principal?: Principal;
}

/** Reads the authenticated principal set by {@link identify}. */
export function principalOf(locals: Record<string, unknown>): Principal | undefined {
  return (locals as ServiceLocals).principal;
}

/**
 * Records the caller's principal (if the `Authorization: Bearer` token or the `x-api-key` header
 * holds a configured key) without rejecting anything yet.
 */
export function identify(auth: ApiKeyAuth): RequestHandler {
  return (req, res, next) => {
    // `Authorization: Bearer <key>`, or `x-api-key: <key>` (what LangGraph's SDK sends).
    const xApiKey = req.headers["x-api-key"];
    const principal =
      auth.authenticate(req.headers.authorization) ??
      (typeof xApiKey === "string" ? auth.authenticate(`Bearer ${xApiKey.trim()}`) : undefined);
    if (principal) (res.locals as ServiceLocals).principal = principal;
    next();
  };
}

/** Rejects requests without a valid key (401) when keys are configured. */
export function requireApiKey(auth: ApiKeyAuth): RequestHandler {
  return (_req, res, next) => {
    if (!auth.enabled || principalOf(res.locals) !== undefined) {
      next();
      return;
    }
    res.setHeader("www-authenticate", 'Bearer realm="threadline"');
    next(
      new ThreadlineError(
        "UNAUTHORIZED",
        "a valid API key is required: Authorization: Bearer <key> or x-api-key: <key>",
      ),
    );
  };
}

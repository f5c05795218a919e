import { Client } from "@langchain/langgraph-sdk/client";

/** sessionStorage key of the API key: gone when the tab closes, never in localStorage. */
const KEY_STORAGE = "threadline.apiKey";

export function readStoredKey(): string | null {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  try {
    if (key === null) window.sessionStorage.removeItem(KEY_STORAGE);
    else window.sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage disabled (private mode): the key lives in memory for this page only.
  }
}

export function authHeaders(key: string | null): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** The LangGraph SDK client for this service's Agent Server routes (same origin). */
export function createClient(key: string | null): Client {
  // apiKey null: the SDK must not look for one elsewhere; the key goes as a Bearer header.
  return new Client({
    apiUrl: window.location.origin,
    apiKey: null,
    defaultHeaders: authHeaders(key),
  });
}

/** An HTTP answer the page reacts to (401 asks for a key). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** Whether the error means "no valid API key", from our fetches or from the SDK's. */
export function isUnauthorized(err: unknown): boolean {
  if (err instanceof HttpError) return err.status === 401;
  const status = (err as { status?: unknown } | null)?.status;
  return status === 401;
}

export async function getJson<T>(path: string, key: string | null): Promise<T> {
  const res = await fetch(path, { headers: { accept: "application/json", ...authHeaders(key) } });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { message?: string } };
      if (body.error?.message) message = body.error.message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new HttpError(res.status, message);
  }
  return (await res.json()) as T;
}

/** `GET /api/auth`: answered without a key. */
export interface AuthInfo {
  apiKeyRequired: boolean;
}

/** `GET /api/status` (see src/http/status.ts). */
export interface ServiceStatus {
  database: {
    kind: "embedded" | "postgres";
    status: "ok" | "degraded" | "down";
    mode: "primary" | "fallback";
    latencyMs: number;
    pending: number;
    pendingBytes?: number;
    since?: string;
    pool: { total: number; idle: number; waiting: number; max: number };
  };
  cleanup: {
    enabled: boolean;
    schedule: string;
    ttlMs: number;
    lastRun: CleanupRun | null;
  };
}

export interface CleanupRun {
  at: string;
  status: "success" | "skipped" | "failure";
  threadsDeleted?: number;
  checkpointsDeleted?: number;
  historyCheckpointsDeleted?: number;
  durationMs?: number;
  complete?: boolean;
  reason?: string;
  error?: string;
}

/** `GET /api/status/threads/:id`. */
export interface ThreadStorage {
  threadId: string;
  checkpoints: number;
  writes: number;
  blobs: number;
  bytes: number;
  lastActivity: string | null;
  expiresAt: string | null;
}

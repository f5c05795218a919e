import { setTimeout as sleep } from "node:timers/promises";
import { classifyDbError } from "./errors.js";

export interface RetryOptions {
  /** Total attempts including the first. Default 4. */
  attempts?: number;
  /** First backoff in ms; doubles each time. Default 50. */
  baseDelayMs?: number;
  /** Upper bound of one backoff in ms. Default 2 000. */
  maxDelayMs?: number;
  /** Called before each retry (for logs and metrics). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs an idempotent database operation, retrying connection-level failures (terminated backends,
 * resets, refused connections) with exponential backoff and full jitter. Anything else, and the
 * last failure, is rethrown unchanged.
 */
export async function withRetry<T>(op: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 4);
  const base = options.baseDelayMs ?? 50;
  const cap = options.maxDelayMs ?? 2_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (attempt >= attempts || classifyDbError(err) !== "DB_UNAVAILABLE") throw err;
      const delay = Math.round(Math.random() * Math.min(cap, base * 2 ** (attempt - 1)));
      options.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}

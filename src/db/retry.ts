import { setTimeout as sleep } from "node:timers/promises";
import type { ErrorCode } from "../errors.js";
import { classifyDbError } from "./errors.js";

export interface RetryOptions {
  /** Total attempts including the first. Default 4. */
  attempts?: number;
  /** First backoff in ms; doubles each time. Default 50. */
  baseDelayMs?: number;
  /** Upper bound of one backoff in ms. Default 2 000. */
  maxDelayMs?: number;
  /**
   * Threadline codes that are retried. Default `["DB_UNAVAILABLE"]`: a terminated backend, a
   * reset or a refused connection. Add `DB_CONFLICT` only around a whole transaction.
   */
  retryOn?: readonly ErrorCode[];
  /** Called before each retry (for logs and metrics). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

const DEFAULT_RETRY_ON: readonly ErrorCode[] = ["DB_UNAVAILABLE"];

/**
 * The delay before retry number `attempt` (1-based): "full jitter" exponential backoff, a uniform
 * draw in `[0, min(cap, base * 2^(attempt-1))]`. Full jitter spreads the retries of many clients
 * that failed at the same instant (a failover) instead of sending them back in waves.
 *
 * @param random a source in [0, 1); injectable so tests can pin the bounds.
 */
export function backoffDelay(
  attempt: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * Math.max(0, ceiling));
}

/**
 * Runs an idempotent database operation, retrying connection-level failures (terminated backends,
 * resets, refused connections) with exponential backoff and full jitter. Anything else, and the
 * last failure, is rethrown unchanged.
 *
 * This is also Threadline's answer to "pre-ping": `pg` cannot validate a pooled connection before
 * handing it out, so a connection that died while idle fails on first use (fast: the socket is
 * already closed) and the retry runs on a fresh one. Only wrap statements that are safe to run
 * twice: a failure after the server committed looks the same as one before it.
 */
export async function withRetry<T>(op: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 4);
  const base = options.baseDelayMs ?? 50;
  const cap = options.maxDelayMs ?? 2_000;
  const retryOn = options.retryOn ?? DEFAULT_RETRY_ON;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (attempt >= attempts || !retryOn.includes(classifyDbError(err))) throw err;
      const delay = backoffDelay(attempt, base, cap);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}

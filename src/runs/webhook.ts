import type { Logger } from "../logger.js";
import type { Json } from "./threads.js";

/** How long a webhook POST may take before it is given up (ms). */
export const WEBHOOK_TIMEOUT_MS = 10_000;

/** What a run's webhook receives (with `webhook_sent_at` added): the ended run, its values. */
export type WebhookPayload = Record<string, Json>;

/**
 * POSTs `payload` as JSON, stamped `webhook_sent_at`, to a run's `webhook` once the run's end has
 * committed. One attempt, bounded by {@link WEBHOOK_TIMEOUT_MS}; a failure is logged (with the
 * URL's origin only: its path or query may hold a token) and never changes the run.
 */
export async function sendWebhook(
  url: string,
  payload: WebhookPayload,
  logger: Logger,
): Promise<void> {
  const origin = new URL(url).origin;
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...payload, webhook_sent_at: new Date().toISOString() }),
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    // The body is not read: drop it so the connection is released.
    await res.body?.cancel();
    if (!res.ok)
      logger.warn({ webhook: origin, status: res.status }, "run webhook answered an error");
  } catch (err) {
    logger.warn({ webhook: origin, err: (err as Error).message }, "run webhook failed");
  }
}

import { once } from "node:events";
import type { Response } from "express";
import { UI_MESSAGE_STREAM_HEADERS, type UIMessageChunk } from "ai";

/** Interval of SSE comment lines that keep proxies from closing a stream waiting on the model. */
const KEEP_ALIVE_MS = 15_000;

/**
 * Writes the AI SDK UI message stream (v1) to an Express response: the SDK's own headers
 * (`x-vercel-ai-ui-message-stream: v1`, no buffering), one `data: {json}` event per chunk and a
 * final `data: [DONE]`. Written by hand rather than through `pipeUIMessageStreamToResponse` so
 * that backpressure, client disconnects and shutdown are under the route's control.
 */
export class UIMessageStreamResponse {
  private closed = false;
  private keepAlive: NodeJS.Timeout | undefined;
  private opened = false;

  constructor(private readonly res: Response) {
    res.once("close", () => {
      this.closed = true;
      clearInterval(this.keepAlive);
    });
  }

  /**
   * Sends the status and headers. Deferred until the reply's first chunk is known, so a failure
   * before it (an upstream model error, the database) can still answer with a JSON error status.
   */
  start(): void {
    if (this.opened || this.closed) return;
    this.opened = true;
    const { res } = this;
    res.status(200);
    for (const [name, value] of Object.entries(UI_MESSAGE_STREAM_HEADERS))
      res.setHeader(name, value);
    // No flushHeaders(): start() is called for the first chunk, which follows at once; Node
    // sends the headers with that chunk in one write instead of two.
    this.keepAlive = setInterval(() => {
      if (!this.closed) res.write(": keep-alive\n\n");
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  /** True once {@link start} sent the headers. */
  get started(): boolean {
    return this.opened;
  }

  /** False once the client has gone away; writes are then dropped. */
  get open(): boolean {
    return !this.closed && !this.res.writableEnded;
  }

  /**
   * Sends one chunk (starting the stream if needed), waiting for a slow client to drain. Node's
   * response corks its socket on a write and uncorks on the next tick, so the chunks of one tick
   * already leave in one socket write.
   */
  async send(chunk: UIMessageChunk): Promise<void> {
    this.start();
    if (!this.open) return;
    if (!this.res.write(`data: ${JSON.stringify(chunk)}\n\n`)) {
      await Promise.race([once(this.res, "drain"), once(this.res, "close")]);
    }
  }

  /** Sends `data: [DONE]` and ends a started response; a response never started is left alone. */
  end(): void {
    clearInterval(this.keepAlive);
    if (!this.opened || !this.open) return;
    this.res.end("data: [DONE]\n\n");
  }
}

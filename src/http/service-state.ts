/** A chat stream in flight, as the shutdown logic sees it. */
export interface ActiveStream {
  /** Cancels the graph run; the stream then ends with an `error` chunk. */
  abort(): void;
  /** Settles when the response has ended. */
  readonly done: Promise<void>;
}

/** Shared state between the routes and the service's lifecycle (drain, shutdown). */
export interface ServiceState {
  draining: boolean;
  readonly streams: Set<ActiveStream>;
}

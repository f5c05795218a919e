/**
 * The outage state machine of {@link FallbackCheckpointer}: one instance per checkpointer, the
 * only holder of its mode and of the counters that describe mode changes.
 *
 * States and transitions:
 *
 * ```
 *            connection-level failure of a call (or of start())
 *   primary ───────────────────────────────────────────────▶ fallback
 *      ▲                                                         │ probe timer fires
 *      │ round succeeded and the log is empty                    ▼
 *      └──────────────────────────────────────────────────── probing (probe, setup, replay)
 *                                                                │ round failed: backoff,
 *                                                                ▼ back to fallback
 * ```
 *
 * - `primary`: every call goes to the primary saver. A connection-level failure (see
 *   `isConnectionError`) calls {@link OutageState.enter}: mode `fallback`, a probe scheduled
 *   after `probeIntervalMs`.
 * - `fallback`: calls are served from memory and writes are logged. The scheduled probe runs one
 *   *round* (the checkpointer's probe, setup and replay). A round that throws calls
 *   {@link OutageState.probeFailed}: the next probe comes after an exponential, capped,
 *   jittered delay. A round that replays everything calls {@link OutageState.exit}: mode
 *   `primary`. A round that finishes while writes were logged meanwhile runs again at once.
 *   Rounds never overlap ({@link OutageState.probeNow} joins a running one).
 * - `closed` (after {@link OutageState.close}, from either mode): no probe is scheduled again;
 *   the checkpointer stops entering fallback and rethrows outages.
 */

/** Where the fallback checkpointer serves calls from. */
export type FallbackMode = "primary" | "fallback";

/** Settings of an {@link OutageState}. Durations are milliseconds. */
export interface OutageOptions {
  /** First probe delay after an outage begins; doubles (with jitter) per failed probe. */
  probeIntervalMs: number;
  /** Longest delay between two probes. */
  probeMaxIntervalMs: number;
  /** One probe round: check the primary and replay; throws when the primary is still down. */
  round: () => Promise<void>;
}

/** Mode, timestamps and transition counters of one fallback checkpointer. */
export class OutageState {
  private currentMode: FallbackMode = "primary";
  private sinceDate = new Date();
  private error: string | undefined;
  private transitionCount = 0;
  private probeAttempt = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private isClosed = false;

  constructor(private readonly options: OutageOptions) {}

  /** The current mode. */
  get mode(): FallbackMode {
    return this.currentMode;
  }

  /** When the current mode began. */
  get since(): Date {
    return this.sinceDate;
  }

  /** The error that started the current outage, or of the last failed probe. */
  get lastError(): string | undefined {
    return this.error;
  }

  set lastError(message: string | undefined) {
    this.error = message;
  }

  /** Mode changes since the process started. */
  get transitions(): number {
    return this.transitionCount;
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** primary -> fallback. Returns false (and changes nothing) when already in fallback. */
  enter(errorMessage: string): boolean {
    if (this.currentMode === "fallback") return false;
    this.currentMode = "fallback";
    this.sinceDate = new Date();
    this.error = errorMessage;
    this.transitionCount += 1;
    this.probeAttempt = 0;
    this.schedule(this.options.probeIntervalMs);
    return true;
  }

  /** fallback -> primary. Returns how long the outage lasted (ms), or undefined if not in one. */
  exit(): number | undefined {
    if (this.currentMode === "primary") return undefined;
    const downMs = Date.now() - this.sinceDate.getTime();
    this.currentMode = "primary";
    this.sinceDate = new Date();
    this.transitionCount += 1;
    this.probeAttempt = 0;
    return downMs;
  }

  /** A round failed: remember why and schedule the next probe with backoff. Returns the attempt. */
  probeFailed(errorMessage: string): number {
    this.error = errorMessage;
    this.probeAttempt += 1;
    // Exponential, capped, with +-25% jitter so that many processes do not probe in step.
    const { probeIntervalMs, probeMaxIntervalMs } = this.options;
    const ceiling = Math.min(probeMaxIntervalMs, probeIntervalMs * 2 ** (this.probeAttempt - 1));
    this.schedule(Math.max(1, Math.round(ceiling * (0.75 + Math.random() * 0.5))));
    return this.probeAttempt;
  }

  /** Schedules a probe round after `delayMs` unless one is scheduled or the state is closed. */
  schedule(delayMs: number): void {
    if (this.isClosed || this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      void this.probeNow();
    }, delayMs);
    // Probing alone must not keep a process alive; close() is the orderly way out.
    this.probeTimer.unref();
  }

  /** One probe round now; joins the running one so that two never run at once. */
  probeNow(): Promise<void> {
    this.probing ??= this.options.round().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  /** Stops probing and waits for a running round. */
  async close(): Promise<void> {
    this.isClosed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    await this.probing?.catch(() => undefined);
  }
}

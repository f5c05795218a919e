import pg from "pg";

/**
 * Records the text of every statement pg's clients send while `record` runs. Observed, not
 * replaced: each call goes on to pg's own `query` with the same arguments. `install` in a
 * beforeAll, `uninstall` in the matching afterAll.
 */
export class StatementRecorder {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- restored as is by uninstall
  private readonly original = pg.Client.prototype.query;
  private captured: string[] = [];
  private capturing = false;

  install(): void {
    const original = this.original as (...a: unknown[]) => unknown;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the hook needs pg's `this` too
    const recorder = this;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      if (recorder.capturing) {
        const first = args[0] as string | { text?: string } | undefined;
        const text = typeof first === "string" ? first : first?.text;
        if (typeof text === "string") recorder.captured.push(text);
      }
      return original.apply(this, args);
    } as typeof pg.Client.prototype.query;
  }

  uninstall(): void {
    pg.Client.prototype.query = this.original;
  }

  /** The statements sent while `fn` ran, in order. */
  async record(fn: () => Promise<unknown>): Promise<string[]> {
    this.captured = [];
    this.capturing = true;
    try {
      await fn();
    } finally {
      this.capturing = false;
    }
    return this.captured.splice(0);
  }
}

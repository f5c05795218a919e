/** Benchmarks of the other capabilities, wired in as they land (sweep, import, load). */
export interface ExtrasContext {
  url: string;
  redisUrl: string;
  quick: boolean;
  log: (line: string) => void;
  want: (name: string) => boolean;
  optional: <T>(
    name: string,
    path: string,
    run: (mod: Record<string, unknown>) => Promise<T>,
  ) => Promise<void>;
  targets: Array<{ name: string; value: number | undefined; target: string; ok: boolean }>;
}

export async function runExtras(_ctx: ExtrasContext): Promise<void> {
  // Filled in as the cleanup, importer and service benchmarks land.
}

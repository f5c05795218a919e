import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Global setup: the run gets a private temp folder (TMPDIR, inherited by the test workers and the
 * processes they start), and the teardown fails the run when a test left anything in it. A
 * private folder, because other runs on a shared machine write to /tmp at the same time.
 */

/** Caches of tools, not files a test made (tsx keeps compiled modules per user). */
const TOOL_CACHES = [
  /^tsx-\d+$/,
  /^node-compile-cache$/,
  /^\.org\.chromium\./,
  /^\.com\.google\.Chrome\./,
];

const saved = { TMPDIR: process.env.TMPDIR, TMP: process.env.TMP, TEMP: process.env.TEMP };
let dir: string | undefined;

export function setup(): void {
  dir = mkdtempSync(join(tmpdir(), "threadline-test-tmp-"));
  process.env.TMPDIR = dir;
  process.env.TMP = dir;
  process.env.TEMP = dir;
}

export function teardown(): void {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  if (dir === undefined) return;
  const left = readdirSync(dir).filter((name) => !TOOL_CACHES.some((re) => re.test(name)));
  rmSync(dir, { recursive: true, force: true });
  if (left.length > 0) {
    // vitest reports an error thrown here but still exits 0: set the exit code as well.
    process.exitCode = 1;
    throw new Error(
      `tests left ${left.length} entries in the temp folder: ${left.join(", ")}; remove them in afterAll (or use tempDir() from test/helpers/tmp.ts)`,
    );
  }
}

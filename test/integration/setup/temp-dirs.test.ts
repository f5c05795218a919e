import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Runs vitest on the fixture with the suite's temp-folder check. */
function fixtureRun(leak: boolean): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [
        "node_modules/vitest/vitest.mjs",
        "run",
        "--config",
        "test/fixtures/temp-leak/vitest.config.ts",
      ],
      { cwd: ROOT, env: { ...process.env, TEMP_LEAK: leak ? "1" : "0" }, timeout: 170_000 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === "number" ? err.code : -1) : 0,
          output: stdout + stderr,
        }),
    );
  });
}

describe("the suite's temp-folder check", () => {
  it("fails the run when a test leaves a directory in the temp folder, and passes when it does not", async () => {
    const [leaky, clean] = await Promise.all([fixtureRun(true), fixtureRun(false)]);
    expect(leaky.code, leaky.output).not.toBe(0);
    expect(leaky.output).toMatch(/tests left 1 entries in the temp folder: tl-leak-fixture-/);
    expect(clean.code, clean.output).toBe(0);
  }, 180_000);
});

import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const manifest = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string };

describe("threadline --version", () => {
  it("prints package.json's version, not npm_package_version of whatever runs it", async () => {
    const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "src/cli.ts", "--version"],
        // Under `npm run` in a project that installed Threadline, this is that project's version.
        { cwd: root, env: { ...process.env, npm_package_version: "9.9.9-host-project" } },
        (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }),
      );
    });
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toBe(manifest.version);
  });
});

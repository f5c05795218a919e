import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The outcome of a child script run to completion. */
export interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node --import tsx <script> ...args` from the repository root as a separate OS process
 * (its own pools, caches and V8 heap, as another instance of an application would have) and
 * waits for it to exit.
 */
export async function runChild(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ChildRun> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

/** The JSON values a child printed as `<tag> {...}` lines. */
export function taggedLines<T>(stdout: string, tag: string): T[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith(`${tag} `))
    .map((line) => JSON.parse(line.slice(tag.length + 1)) as T);
}

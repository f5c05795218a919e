import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { TEST_DATABASE_URL } from "../../helpers/db.js";
import { freePort } from "../http/cli-helpers.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The test agent: streaming model, tool node, interrupt (see the file's header). */
export const AGENT_FILE = fileURLToPath(new URL("../../fixtures/graphs/agent.ts", import.meta.url));
export const FIXTURES = fileURLToPath(new URL("../../fixtures/graphs/", import.meta.url));

/** `threadline serve` as a child process, with its own arguments. */
export interface Served {
  child: ChildProcess;
  url: string;
  logs(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/** Runs `threadline serve` to completion (for start failures): exit code and stderr. */
export async function serveUntilExit(
  args: readonly string[],
  env: Record<string, string> = {},
  cwd: string = ROOT,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      `${ROOT}src/cli.ts`,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      ...args,
    ],
    {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}

/**
 * Spawns `node --import tsx src/cli.ts serve --graph ...` on a free port against the test
 * database in `schema`, and waits for its "listening" line.
 */
export async function serveGraphs(
  schema: string,
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 90_000,
  cwd: string = ROOT,
): Promise<Served> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      `${ROOT}src/cli.ts`,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--schema",
      schema,
      ...args,
    ],
    {
      cwd,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/root",
        DATABASE_URL: TEST_DATABASE_URL,
        THREADLINE_CLEANUP_ENABLED: "false",
        THREADLINE_SERVER_RATE_LIMIT_MAX: "100000",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  child.stdout.on("data", () => undefined);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const deadline = Date.now() + timeoutMs;
  while (!stderr.includes("threadline listening on")) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${stderr}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`serve did not start:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    logs: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A user message whose answer streams `words` tokens (40 ms each by default). */
export function long(words: number): { messages: Array<{ role: string; content: string }> } {
  return {
    messages: [
      { role: "user", content: Array.from({ length: words }, (_, i) => `w${i}`).join(" ") },
    ],
  };
}

/** Polls `read` every 50 ms until `ok`; fails naming `what` and the last value after `ms`. */
export async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** A free loopback port. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `threadline serve` as a child process (the real CLI through tsx). */
export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote to stderr (its JSON logs). */
  logs(): string;
  exited: Promise<number | null>;
}

/**
 * Spawns `node --import tsx src/cli.ts serve` with exactly `env` (plus PATH/HOME) and waits for
 * its "listening" log line.
 */
export async function spawnServe(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli.ts", "serve", "--port", String(port), "--host", "127.0.0.1"],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env },
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
  return { child, url: `http://127.0.0.1:${port}`, logs: () => stderr, exited };
}

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TEST_DATABASE_URL, dropSchema, testPool, uniqueSchema } from "../../helpers/db.js";
import { freePort } from "../http/cli-helpers.js";
import { chatBody, readSse } from "../http/helpers.js";

/**
 * `npm start` as systemd, Docker or Kubernetes run it: the signal goes to the npm process (or, for
 * Ctrl-C, to its whole process group), and the service with its embedded-database child must stop
 * cleanly, leaving the port and the data directory lock free. The build runs once, in the first
 * test (the real `npm start`, prestart included); the second starts with `--ignore-scripts`, which
 * runs the same `start` script without its `prestart` build.
 */

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const pool = testPool(1);
const schema = uniqueSchema("tl_npm_start");
const dir = mkdtempSync(join(tmpdir(), "tl-npm-start-"));

afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
  rmSync(dir, { recursive: true, force: true });
});

/** Pids of live processes whose environment carries `marker` (the whole tree of one start). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "latin1").includes(marker)) pids.push(+entry);
    } catch {
      // Gone meanwhile, or not ours.
    }
  }
  return pids;
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

interface NpmStart {
  child: ChildProcess;
  port: number;
  marker: string;
  output(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

async function npmStart(
  args: string[],
  env: Record<string, string>,
  options: { detached?: boolean } = {},
): Promise<NpmStart> {
  const port = await freePort();
  const id = randomUUID();
  const marker = `TL_NPM_START_MARKER=${id}`;
  const child = spawn("npm", ["start", ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/root",
      PORT: String(port),
      THREADLINE_LOG_LEVEL: "info",
      TL_NPM_START_MARKER: id,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  // The build takes a minute or more on a loaded machine; this only bounds a hang.
  const deadline = Date.now() + 280_000;
  while (!output.includes("threadline listening on")) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`npm start did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, marker, output: () => output, exited };
}

/** Waits (bounded) until no process of the start remains; returns those still left. */
async function remaining(marker: string): Promise<number[]> {
  for (let i = 0; i < 100; i++) {
    const left = processesWith(marker);
    if (left.length === 0) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
  return processesWith(marker);
}

describe("npm start under a process manager", () => {
  it("SIGTERM to the npm process stops the service cleanly and frees the port (DATABASE_URL)", async () => {
    const run = await npmStart([], {
      DATABASE_URL: TEST_DATABASE_URL,
      THREADLINE_DATABASE_SCHEMA: schema,
    });
    // npm and the service itself (no shell in between: `exec`).
    const tree = processesWith(run.marker);
    expect(tree.length).toBe(2);
    expect(await portIsFree(run.port)).toBe(false);

    run.child.kill("SIGTERM");
    const [code] = await run.exited;
    expect(run.output()).toContain('"reason":"SIGTERM"');
    expect(run.output()).toContain("threadline stopped");
    expect(code).toBe(0);
    expect(await remaining(run.marker)).toEqual([]);
    expect(await portIsFree(run.port)).toBe(true);
  }, 300_000);

  it("Ctrl-C (SIGINT to the process group) stops the service and its embedded database cleanly and releases the data directory lock", async () => {
    if (!existsSync(join(ROOT, "dist", "src", "cli.js"))) {
      // Run alone (-t): the first test built it otherwise.
      expect(spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT }).status).toBe(0);
    }
    const dataDir = join(dir, "data");
    const run = await npmStart(
      ["--ignore-scripts"],
      { THREADLINE_DATABASE_EMBEDDED_DATA_DIR: dataDir },
      { detached: true },
    );
    // npm, the service and the embedded database server.
    expect(processesWith(run.marker).length).toBe(3);
    expect(existsSync(`${dataDir}.lock`)).toBe(true);
    // What a fresh clone gets from `npm start`: the page at / and the offline model answering.
    const base = `http://127.0.0.1:${run.port}`;
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    const turn = await fetch(`${base}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chatBody(`npm-start-${randomUUID()}`, "hello"),
    });
    expect(turn.status).toBe(200);
    const reply = (await readSse(turn))
      .map((e) => (e !== "[DONE]" && e.type === "text-delta" ? String(e.delta) : ""))
      .join("");
    expect(reply).toContain("Offline model, turn 1.");

    // What a terminal does: the whole foreground process group gets the signal, and npm forwards
    // it to the service once more.
    process.kill(-run.child.pid!, "SIGINT");
    const [code] = await run.exited;
    const output = run.output();
    expect(output).toContain('"reason":"SIGINT"');
    expect(output).toContain("threadline stopped");
    expect(output).not.toContain("second signal during shutdown");
    expect(output).not.toContain("the embedded database server stopped unexpectedly");
    expect(code).toBe(0);
    expect(await remaining(run.marker)).toEqual([]);
    expect(await portIsFree(run.port)).toBe(true);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
  }, 300_000);
});

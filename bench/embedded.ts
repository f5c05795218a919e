import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { median } from "./stats.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** One start of `threadline serve` on the embedded database. */
export interface EmbeddedStart {
  /** Spawn to the "listening" log line. */
  startMs: number;
  /** Highest RSS of the service and all its child processes during the start, in MiB. */
  peakRssMiB: number;
  /** RSS of the service and its children once listening and after the chat turns, in MiB. */
  rssMiB: number;
  /** The service process alone (the Node app, without the database), same moment, MiB. */
  appRssMiB: number;
}

/** Result of {@link benchEmbedded}. */
export interface EmbeddedBenchResult {
  first: EmbeddedStart;
  warm: EmbeddedStart;
  /** p50 of an HTTP chat turn (POST /api/chat to `[DONE]`) on the embedded database, ms. */
  chatTurnMs: number;
  /** The same turn on the same service started on the real Postgres server (DATABASE_URL). */
  chatTurnServerMs: number;
  turns: number;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Pids of `pid` and every descendant, from /proc. */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const task of safeReaddir(`/proc/${out[i]}/task`)) {
      const children = safeRead(`/proc/${out[i]}/task/${task}/children`).trim();
      if (children) out.push(...children.split(/\s+/).map(Number));
    }
  }
  return out;
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Resident set size of one process in MiB (0 once it is gone). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(safeRead(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : 0;
}

interface Serve {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `threadline serve` as `npm start` runs it (the built CLI, `node dist/src/cli.js`; no
 * TypeScript loader) and samples the RSS of its process tree every 50 ms until it logs that it
 * listens.
 */
async function serve(
  env: Record<string, string>,
): Promise<{ serve: Serve; startMs: number; peakRssMiB: number }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ["dist/src/cli.js", "serve", "--port", String(port), "--host", "127.0.0.1"],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/root",
        THREADLINE_CLEANUP_ENABLED: "false",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  child.stdout.on("data", () => undefined);
  let peak = 0;
  const deadline = Date.now() + 240_000;
  while (!stderr.includes("threadline listening on")) {
    if (child.exitCode !== null) throw new Error(`serve exited: ${stderr.slice(-1000)}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`serve did not start: ${stderr.slice(-1000)}`);
    }
    peak = Math.max(
      peak,
      tree(child.pid!).reduce((n, p) => n + rssOf(p), 0),
    );
    await new Promise((r) => setTimeout(r, 50));
  }
  const startMs = performance.now() - t0;
  const exited = once(child, "exit");
  return {
    startMs,
    peakRssMiB: peak,
    serve: {
      child,
      url: `http://127.0.0.1:${port}`,
      stop: async () => {
        child.kill("SIGTERM");
        await exited;
      },
    },
  };
}

/** `npm run build`, as `npm start`'s prestart does. */
async function build(): Promise<void> {
  const child = spawn("npm", ["run", "build", "--silent"], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`npm run build failed: ${stderr.slice(-1000)}`);
}

/** One streamed chat turn; resolves when the stream ended with `[DONE]`. */
async function chatTurn(url: string, threadId: string, n: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/api/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      id: threadId,
      message: {
        id: `${threadId}-u${n}`,
        role: "user",
        parts: [{ type: "text", text: `hi ${n}` }],
      },
    }),
  });
  const text = await res.text();
  if (res.status !== 200 || !text.trimEnd().endsWith("data: [DONE]"))
    throw new Error(`chat turn failed: HTTP ${res.status} ${text.slice(0, 200)}`);
  return performance.now() - t0;
}

async function turns(url: string, count: number): Promise<number[]> {
  const thread = `bench-emb-${Math.random().toString(36).slice(2, 8)}`;
  const ms: number[] = [];
  for (let i = 1; i <= count; i++) ms.push(await chatTurn(url, thread, i));
  return ms;
}

/**
 * The embedded database (PGlite) as `npm start` runs it without DATABASE_URL: first start on an
 * empty data directory (start time, peak RSS of the service and its children during the start,
 * RSS once serving), chat turns over HTTP, then a warm start on the same directory; and the same
 * chat turns on the same service started on the real Postgres server, for the ratio.
 */
export async function benchEmbedded(opts: {
  quick: boolean;
  databaseUrl: string;
  log: (line: string) => void;
}): Promise<EmbeddedBenchResult> {
  const count = opts.quick ? 5 : 20;
  // What `npm start` runs: its prestart builds first.
  await build();
  opts.log("embedded: built (npm run build)");
  const dir = mkdtempSync(join(tmpdir(), "tl-bench-embedded-"));
  const env = { THREADLINE_DATABASE_EMBEDDED_DATA_DIR: join(dir, "data") };
  const measure = async (): Promise<{ start: EmbeddedStart; ms: number[] }> => {
    const started = await serve(env);
    try {
      const ms = await turns(started.serve.url, count);
      const pids = tree(started.serve.child.pid!);
      return {
        ms,
        start: {
          startMs: started.startMs,
          peakRssMiB: started.peakRssMiB,
          rssMiB: pids.reduce((n, p) => n + rssOf(p), 0),
          appRssMiB: rssOf(started.serve.child.pid!),
        },
      };
    } finally {
      await started.serve.stop();
    }
  };
  try {
    const first = await measure();
    opts.log("embedded: first start measured");
    const warm = await measure();
    const schema = `bench_emb_${Math.random().toString(36).slice(2, 8)}`;
    const server = await serve({
      DATABASE_URL: opts.databaseUrl,
      THREADLINE_DATABASE_SCHEMA: schema,
    });
    let serverMs: number[];
    try {
      serverMs = await turns(server.serve.url, count);
    } finally {
      await server.serve.stop();
      const pg = (await import("pg")).default;
      const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 1 });
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    }
    return {
      first: first.start,
      warm: warm.start,
      chatTurnMs: median([...first.ms, ...warm.ms]),
      chatTurnServerMs: median(serverMs),
      turns: count * 2,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { ThreadlineConfig } from "../config/schema.js";
import { ThreadlineError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Database } from "./database.js";
import { attachPoolErrorHandler, poolStats } from "./pool.js";

/** How long the PGlite server may take to start (about 1 s; far longer on a loaded machine). */
const START_TIMEOUT_MS = 60_000;
/** How long creating the cluster may take (3-4 s; a minute or more on a loaded machine). */
const INIT_TIMEOUT_MS = 300_000;
/** How long a stopping server gets before it is killed. */
const STOP_TIMEOUT_MS = 5_000;

/**
 * Code run first in every child process: when our process dies, even by `kill -9`, the pipe on
 * the child's stdin closes, and the child then shuts itself down through its own SIGTERM handler
 * instead of living on as an orphan holding the data directory.
 */
const WATCHDOG = `process.stdin.on("end",()=>process.kill(process.pid,"SIGTERM"));process.stdin.on("error",()=>{});process.stdin.resume();`;

/**
 * `shared_buffers` of the embedded server. PGlite's initdb picks 128 MB; buffers, like the rest
 * of a WASM heap, stay resident once touched, and a WASM heap never shrinks. A development store
 * of chats fits in far less, and the buffers are most of what a warm server holds beyond code.
 */
const SHARED_BUFFERS = "16MB";

/** Printed by the child once it serves (the parent waits for it). */
const READY_LINE = "threadline-embedded listening";

/** Contents of the lock file next to the data directory. */
interface LockInfo {
  pid: number;
  serverPid?: number;
  hostname: string;
  startedAt: string;
}

/** The ESM entry (`dist/index.js`) of an installed package whose `require` entry is beside it. */
function esmEntry(pkg: string): string {
  const require = createRequire(import.meta.url);
  return pathToFileURL(join(dirname(require.resolve(pkg)), "index.js")).href;
}

/**
 * The child process's program (an ES module run with `--input-type=module -e`), in one of two
 * modes. `init` creates the cluster and exits: PGlite's initdb runs a second Postgres instance
 * beside the first and keeps a copy of its 128 MB heap to reset it between runs, and a WASM heap
 * is given back only when its process exits (a server that ran initdb itself stays near 800 MB
 * for its whole life; one that opens an existing cluster starts near 160 MB). `serve` opens the
 * cluster and serves it with PGlite's socket server (the package's API rather than its launcher
 * script, so that the start parameters are ours).
 */
function childProgram(): string {
  const pglite = JSON.stringify(esmEntry("@electric-sql/pglite"));
  const socket = JSON.stringify(esmEntry("@electric-sql/pglite-socket"));
  const sharedBuffers = JSON.stringify(`shared_buffers=${SHARED_BUFFERS}`);
  return `// threadline-embedded
${WATCHDOG}
const { PGlite } = await import(${pglite});
const arg = (name) => process.argv.find((a) => a.startsWith("--" + name + "="))?.slice(name.length + 3);
const dataDir = arg("db");
if (arg("mode") === "init") {
  // initdb's -c applies to its own runs and is written to postgresql.conf for later starts.
  const db = new PGlite(dataDir, { initDbStartParams: ["-c", ${sharedBuffers}] });
  await db.waitReady;
  await db.close();
  process.exit(0);
}
const { PGLiteSocketServer } = await import(${socket});
// Also for clusters created before shared_buffers was lowered.
const db = new PGlite(dataDir, { startParams: [...PGlite.defaultStartParams, "-c", ${sharedBuffers}] });
await db.waitReady;
const server = new PGLiteSocketServer({
  db,
  host: "127.0.0.1",
  port: Number(arg("port")),
  maxConnections: Number(arg("max-connections")),
});
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop().catch(() => {});
  await db.close().catch(() => {});
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
server.addEventListener("listening", () => console.log(${JSON.stringify(READY_LINE)}));
await server.start();
`;
}

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when `pid` is a PGlite server serving `dataDir` (guards against pid reuse). */
function isOurServer(pid: number, dataDir: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes("pglite-socket") && cmdline.includes(dataDir);
  } catch {
    return false;
  }
}

/**
 * Takes the lock file `<dataDir>.lock` (created exclusively). A lock left by a dead process is
 * stale and replaced; if that process's PGlite server outlived it (an older crash, another
 * platform without the watchdog), the server is stopped first, because two servers on one data
 * directory lose committed writes.
 */
async function acquireLock(lockPath: string, dataDir: string, logger: Logger): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const info: LockInfo = {
      pid: process.pid,
      hostname: hostname(),
      startedAt: new Date().toISOString(),
    };
    try {
      writeFileSync(lockPath, JSON.stringify(info), { flag: "wx" });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let held: Partial<LockInfo> = {};
    try {
      held = JSON.parse(readFileSync(lockPath, "utf8")) as Partial<LockInfo>;
    } catch {
      // Unreadable or half-written: treated as stale below.
    }
    const sameHost = held.hostname === undefined || held.hostname === hostname();
    // Our own pid counts too: this process already has the directory open.
    if (sameHost && isAlive(held.pid)) {
      throw new ThreadlineError(
        "DB_UNAVAILABLE",
        `the embedded database in ${dataDir} is in use by process ${held.pid} (lock file ${lockPath}); stop that process, or set database.embedded.dataDir to another directory, or set DATABASE_URL`,
      );
    }
    if (!sameHost) {
      throw new ThreadlineError(
        "DB_UNAVAILABLE",
        `the embedded database in ${dataDir} is locked by host ${held.hostname ?? "?"} (lock file ${lockPath}); if that host is gone, delete the lock file`,
      );
    }
    if (
      held.serverPid !== undefined &&
      isAlive(held.serverPid) &&
      isOurServer(held.serverPid, dataDir)
    ) {
      logger.warn({ pid: held.serverPid }, "stopping an orphaned embedded database server");
      process.kill(held.serverPid, "SIGTERM");
      for (let i = 0; i < 50 && isAlive(held.serverPid); i++) await sleep(100);
      if (isAlive(held.serverPid)) process.kill(held.serverPid, "SIGKILL");
    }
    logger.warn({ lockPath, pid: held.pid }, "removing a stale embedded database lock");
    rmSync(lockPath, { force: true });
  }
  throw new ThreadlineError(
    "DB_UNAVAILABLE",
    `could not take the embedded database lock ${lockPath}`,
  );
}

/** A free TCP port on the loopback interface. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Waits until the server prints that it listens, or fails if it exits first. */
async function waitForListening(child: ChildProcess, logger: Logger): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      finish(
        new ThreadlineError(
          "DB_UNAVAILABLE",
          `the embedded database did not start within ${START_TIMEOUT_MS / 1000} s`,
        ),
      );
    }, START_TIMEOUT_MS);
    const onData = (data: Buffer) => {
      const text = data.toString("utf8");
      output = (output + text).slice(-4000);
      if (text.includes(READY_LINE)) finish();
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      logger.error(
        { code, signal, output: output.slice(-1000) },
        "embedded database server exited during start",
      );
      finish(
        new ThreadlineError(
          "DB_UNAVAILABLE",
          `the embedded database server exited during start (code ${code}, signal ${signal})`,
        ),
      );
    };
    const finish = (err?: Error) => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolvePromise();
    };
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}

/**
 * Starts the embedded development database (README, "The embedded database: caveats"; docs/decisions.md): PGlite's socket server
 * in a child process (so its queries never block this event loop), reached through the same `pg`
 * code path as a real server with exactly ONE connection for the whole application (PGlite has
 * one backend: a second connection could receive another's results), and a lock file of our own
 * on the data directory. Data persists in `database.embedded.dataDir`; PGlite runs with fsync off.
 */
export async function openEmbeddedDatabase(
  config: ThreadlineConfig,
  logger: Logger,
): Promise<Database> {
  const dataDir = resolve(config.database.embedded.dataDir);
  const lockPath = `${dataDir}.lock`;
  mkdirSync(dataDir, { recursive: true });
  await acquireLock(lockPath, dataDir, logger);

  let child: ChildProcess | undefined;
  const stopChildSync = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  };
  const releaseLockSync = () => rmSync(lockPath, { force: true });
  const onExit = () => {
    stopChildSync();
    releaseLockSync();
  };
  process.once("exit", onExit);

  const spawnChild = (args: string[]) => {
    const c = spawn(
      process.execPath,
      [
        // Compiles PGlite's WASM functions when first called rather than all at start: less
        // code memory for the many functions a development store never runs.
        "--wasm-lazy-compilation",
        "--input-type=module",
        "-e",
        childProgram(),
        "--",
        `--db=${dataDir}`,
        ...args,
      ],
      {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, NODE_OPTIONS: "" },
        // A process group of its own: Ctrl-C in a terminal signals the whole foreground group,
        // and the database must outlive the service's drain, then stop when close() says so
        // (or when this process dies: the watchdog).
        detached: true,
      },
    );
    c.stderr?.on("data", (d: Buffer) =>
      logger.debug({ output: d.toString("utf8").trim() }, "embedded database"),
    );
    // The lock names the child, so that a later start can stop it if it outlives us.
    const lock: LockInfo = {
      pid: process.pid,
      ...(c.pid !== undefined ? { serverPid: c.pid } : {}),
      hostname: hostname(),
      startedAt: new Date().toISOString(),
    };
    writeFileSync(lockPath, JSON.stringify(lock));
    return c;
  };

  try {
    const started = Date.now();
    if (!existsSync(join(dataDir, "PG_VERSION"))) {
      // First start: the cluster is created by a process of its own, which exits (see
      // childProgram), so the server below starts as on any later start.
      logger.info({ dataDir }, "creating the embedded database");
      child = spawnChild(["--mode=init"]);
      child.stdout?.on("data", () => undefined);
      // Cancelled once settled: a pending timer would keep short CLI commands alive.
      const cancel = new AbortController();
      const timer = sleep(INIT_TIMEOUT_MS, "timeout" as const, { signal: cancel.signal }).catch(
        () => "cancelled" as const,
      );
      const result = await Promise.race([once(child, "exit"), timer]);
      cancel.abort();
      if (typeof result === "string" || result[0] !== 0) {
        throw new ThreadlineError(
          "DB_UNAVAILABLE",
          typeof result === "string"
            ? `the embedded database was not created within ${INIT_TIMEOUT_MS / 1000} s`
            : `creating the embedded database in ${dataDir} failed (code ${String(result[0])}); delete the directory and start again`,
        );
      }
    }
    const port = await freePort();
    child = spawnChild([
      `--port=${port}`,
      // 2, not 1: absorbs the moment a replaced connection overlaps its successor.
      "--max-connections=2",
    ]);
    child.stdout?.on("data", () => undefined); // drain: its per-connection lines are not interesting
    await waitForListening(child, logger);

    const pool = attachPoolErrorHandler(
      new pg.Pool({
        connectionString: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
        application_name: config.database.applicationName,
        max: 1,
        // The single connection is kept for the life of the app: reconnecting is what races.
        idleTimeoutMillis: 0,
        // Waiting for the one connection is normal under load; only a dead server should fail.
        connectionTimeoutMillis: 30_000,
      }),
      logger,
    );
    await pool.query("SELECT 1");
    const description = `embedded PGlite in ${dataDir}`;
    logger.info(
      { database: description, startMs: Date.now() - started },
      "using the embedded database",
    );
    logger.warn(
      { dataDir },
      "the embedded database is a development store (one connection, fsync off: a power loss can lose recent commits, throughput is limited); for production set DATABASE_URL=postgres://user:password@host:5432/db",
    );

    const exited = once(child, "exit");
    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        await pool.end().catch(() => undefined);
        if (child && child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const timer = sleep(STOP_TIMEOUT_MS).then(() => "timeout" as const);
          if ((await Promise.race([exited, timer])) === "timeout") {
            child.kill("SIGKILL");
            await exited;
          }
        }
        process.off("exit", onExit);
        releaseLockSync();
      })());
    child.once("exit", (code, signal) => {
      if (!closing)
        logger.error({ code, signal }, "the embedded database server stopped unexpectedly");
    });
    return {
      kind: "embedded",
      pool,
      sessionPool: pool,
      description,
      stats: () => poolStats(pool),
      close,
    };
  } catch (err) {
    stopChildSync();
    if (child) await Promise.race([once(child, "exit"), sleep(STOP_TIMEOUT_MS)]);
    process.off("exit", onExit);
    releaseLockSync();
    throw err;
  }
}

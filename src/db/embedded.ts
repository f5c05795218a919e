import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { ThreadlineConfig } from "../config/schema.js";
import { ThreadlineError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Database } from "./database.js";
import { attachPoolErrorHandler, poolStats } from "./pool.js";

/** How long the PGlite server may take to start (first start initialises the cluster: 3-4 s). */
const START_TIMEOUT_MS = 60_000;
/** How long a stopping server gets before it is killed. */
const STOP_TIMEOUT_MS = 5_000;

/**
 * Code run in the server process before PGlite's script: when our process dies, even by
 * `kill -9`, the pipe on the child's stdin closes, and the child then shuts itself down through
 * the script's own SIGTERM handler instead of living on as an orphan holding the data directory.
 */
const WATCHDOG = `process.stdin.on("end",()=>process.kill(process.pid,"SIGTERM"));process.stdin.on("error",()=>{});process.stdin.resume();`;

/** Contents of the lock file next to the data directory. */
interface LockInfo {
  pid: number;
  serverPid?: number;
  hostname: string;
  startedAt: string;
}

/** Path of PGlite's socket server script, resolved from the installed package. */
function serverScript(): string {
  const require = createRequire(import.meta.url);
  // The package exports only its entry (dist/index.*); the script sits next to it.
  const entry = require.resolve("@electric-sql/pglite-socket");
  return join(dirname(entry), "scripts", "server.js");
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
      if (text.includes("PGLiteSocketServer listening")) finish();
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
 * Starts the embedded development database (see ../shared/EMBEDDED.md): PGlite's socket server
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

  try {
    const port = await freePort();
    child = spawn(
      process.execPath,
      [
        "--import",
        `data:text/javascript,${encodeURIComponent(WATCHDOG)}`,
        serverScript(),
        `--db=${dataDir}`,
        `--port=${port}`,
        "--host=127.0.0.1",
        // 2, not 1: absorbs the moment a replaced connection overlaps its successor.
        "--max-connections=2",
      ],
      { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } },
    );
    child.stderr?.on("data", (d: Buffer) =>
      logger.debug({ output: d.toString("utf8").trim() }, "embedded database"),
    );
    child.stdout?.on("data", () => undefined); // drain: its per-connection lines are not interesting
    const lock: LockInfo = {
      pid: process.pid,
      ...(child.pid !== undefined ? { serverPid: child.pid } : {}),
      hostname: hostname(),
      startedAt: new Date().toISOString(),
    };
    writeFileSync(lockPath, JSON.stringify(lock));
    const started = Date.now();
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

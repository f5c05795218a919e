import { Option, type Command } from "commander";
import { openDatabase, redactUrl } from "../db/database.js";
import { ThreadlineError } from "../errors.js";
import type { ImportProgress } from "../importer/index.js";
// The importer, ioredis and the progress bar load when the command runs: `--help` and a usage
// error stay fast.
import { FORMAT_CHOICES, type FormatChoice } from "../importer/types.js";
import type { Logger } from "../logger.js";
import { parseDuration } from "../config/duration.js";
import {
  addCommonOptions,
  addDatabaseChoice,
  createCliLogger,
  EXIT,
  loadCliConfig,
  requireDatabaseChoice,
  runCommand,
  UsageError,
  type CommonOptions,
} from "./context.js";

interface ImportRedisCliOptions extends CommonOptions {
  redisUrl: string;
  match: string;
  history: string;
  format: string;
  scanCount: string;
  batchSize: string;
  concurrency: string;
  rejects?: string;
  verify?: boolean;
  dryRun?: boolean;
  json?: boolean;
  allowPartial?: boolean;
  connectTimeout: string;
}

/** `--redis-url`: a redis:// or rediss:// URL (ioredis reads anything else as a host name). */
function redisUrlFlag(value: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(value).protocol;
  } catch {
    // Not a URL.
  }
  if (protocol !== "redis:" && protocol !== "rediss:") {
    throw new UsageError(
      `--redis-url must be a redis:// or rediss:// URL such as redis://localhost:6379/0; got ${protocol === undefined ? "something that is not a URL" : `a ${protocol}// URL`}`,
    );
  }
}

/** What went wrong connecting, and the fix: the socket error's code says refused, unknown, ... */
function connectProblem(err: Error | undefined, timeout: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused (ECONNREFUSED); check --redis-url and that Redis is running there";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `host not found (${code}); check the host name in --redis-url`;
    case "ETIMEDOUT":
      return `no answer within ${timeout} (timeout); check the host, port and firewall, or raise --connect-timeout`;
    case "ECONNRESET":
      return "connection reset by the server (ECONNRESET); check that --redis-url names a Redis port";
    default:
      return `${err?.message ?? "connection closed"}; check --redis-url`;
  }
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Progress on stderr: a bar (threads done / found, rate, ETA) on a terminal, one log line per
 * phase and at most one every 5 s otherwise, so piped runs and CI logs stay readable.
 */
async function progressReporter(logger: Logger): Promise<{
  update: (p: ImportProgress) => void;
  stop: () => void;
}> {
  if (process.stderr.isTTY) {
    const { default: cliProgress } = await import("cli-progress");
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format:
          "{phase} [{bar}] {value}/{total} {unit} | {rate}/s | ETA {eta_formatted} | {checkpoints} checkpoints",
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let phase = "";
    let started = Date.now();
    return {
      update: (p) => {
        const unit = p.phase === "read" ? "keys" : "threads";
        if (p.phase !== phase) {
          if (phase !== "") bar.stop();
          phase = p.phase;
          started = Date.now();
          bar.start(p.total, p.done, {
            phase: p.phase.padEnd(6),
            unit,
            rate: 0,
            checkpoints: p.checkpointsImported,
          });
        }
        const secs = Math.max(0.001, (Date.now() - started) / 1000);
        bar.setTotal(p.total);
        bar.update(p.done, { rate: Math.round(p.done / secs), checkpoints: p.checkpointsImported });
      },
      stop: () => bar.stop(),
    };
  }
  let phase = "";
  let last = 0;
  return {
    update: (p) => {
      const now = Date.now();
      if (p.phase === phase && now - last < 5_000 && p.done !== p.total) return;
      phase = p.phase;
      last = now;
      logger.info(
        {
          phase: p.phase,
          done: p.done,
          total: p.total,
          checkpointsImported: p.checkpointsImported,
        },
        "import progress",
      );
    },
    stop: () => undefined,
  };
}

/**
 * `threadline import-redis --redis-url <url> [--match <glob>] [--history latest|full]
 * [--format auto|...] [--scan-count N] [--batch-size N] [--concurrency N] [--rejects <file>]
 * [--verify] [--dry-run] [--allow-partial] [--json]`: imports LangGraph Redis sessions.
 * Exit 0 on success; 1 when the run failed, was interrupted (Ctrl-C; rerun to resume), rejected
 * threads (unless --allow-partial) or found verify mismatches; 2 for bad flags or config.
 */
export function registerImportRedisCommand(program: Command): void {
  addDatabaseChoice(
    addCommonOptions(
      program
        .command("import-redis")
        .description(
          "import LangGraph checkpoints from Redis (every official and community layout); never writes to Redis",
        )
        .usage("--redis-url <url> [options]")
        .requiredOption(
          "--redis-url <url>",
          "(required) source Redis, e.g. redis://localhost:6379/0 or rediss://... for TLS",
        )
        .option("--match <glob>", "SCAN MATCH pattern for source keys", "*")
        .addOption(
          new Option(
            "--history <mode>",
            "latest: each thread's latest checkpoint and its pending writes; full: all",
          ).default("latest"),
        )
        .addOption(
          new Option("--format <format>", `source layout (${FORMAT_CHOICES.join(", ")})`).default(
            "auto",
          ),
        )
        .option("--scan-count <n>", "SCAN COUNT hint", "1000")
        .option("--batch-size <n>", "threads per Postgres transaction", "500")
        .option("--concurrency <n>", "transactions in flight", "4")
        .option("--rejects <file>", "write rejected threads to this JSONL file")
        .option("--verify", "read every imported thread back through the checkpointer and compare")
        .option("--dry-run", "decode and convert everything, write nothing")
        .option("--allow-partial", "exit 0 even when some threads were rejected")
        .option("--connect-timeout <dur>", "give up reaching Redis after this long", "10s")
        .option("--json", "print one JSON object on stdout"),
    ),
  ).action((opts: ImportRedisCliOptions) =>
    runCommand(
      async () => {
        redisUrlFlag(opts.redisUrl);
        if (opts.history !== "latest" && opts.history !== "full") {
          throw new UsageError(
            `--history must be latest or full, got ${JSON.stringify(opts.history)}`,
          );
        }
        if (!(FORMAT_CHOICES as readonly string[]).includes(opts.format)) {
          throw new UsageError(
            `--format must be one of ${FORMAT_CHOICES.join(", ")}, got ${JSON.stringify(opts.format)}`,
          );
        }
        const scanCount = positiveInt(opts.scanCount, "--scan-count");
        const batchSize = positiveInt(opts.batchSize, "--batch-size");
        const concurrency = positiveInt(opts.concurrency, "--concurrency");
        const connectTimeoutMs = parseDuration(opts.connectTimeout);
        if (connectTimeoutMs === undefined) {
          throw new UsageError(
            `--connect-timeout must be a positive duration such as 10s or 1m; got ${JSON.stringify(opts.connectTimeout)}`,
          );
        }
        const config = loadCliConfig(opts);
        requireDatabaseChoice(config, opts);
        const logger = createCliLogger(config.log.level, { json: opts.json ?? false });

        // Reconnects (with backoff) only once connected: a first connection that fails is
        // reported at once instead of retried forever.
        let connected = false;
        let lastError: Error | undefined;
        const [{ Redis }, { importRedis }] = await Promise.all([
          import("ioredis"),
          import("../importer/index.js"),
        ]);
        const redis = new Redis(opts.redisUrl, {
          lazyConnect: true,
          maxRetriesPerRequest: 2,
          connectionName: "threadline-import",
          connectTimeout: connectTimeoutMs,
          retryStrategy: (times) => (connected ? Math.min(times * 200, 2_000) : null),
        });
        redis.on("error", (err: Error) => (lastError = err));
        const source = redactUrl(opts.redisUrl);
        const timedOut = new AbortController();
        const timer = setTimeout(() => timedOut.abort(), connectTimeoutMs);
        try {
          // ioredis bounds the TCP connect; this bounds a server that accepts and never answers.
          await Promise.race([
            redis.connect().then(() => redis.ping()),
            new Promise((_, reject) =>
              timedOut.signal.addEventListener("abort", () =>
                reject(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })),
              ),
            ),
          ]);
          connected = true;
        } catch (err) {
          redis.disconnect();
          // ioredis rejects with "Connection is closed."; the socket error it emitted says why.
          const cause =
            (err as NodeJS.ErrnoException).code === "ETIMEDOUT"
              ? (err as Error)
              : (lastError ?? (err as Error));
          throw new ThreadlineError(
            "REDIS_UNAVAILABLE",
            `cannot connect to Redis at ${source}: ${connectProblem(cause, opts.connectTimeout)}`,
            { cause },
          );
        } finally {
          clearTimeout(timer);
        }
        const db = await openDatabase(config, logger);
        const abort = new AbortController();
        const onSigint = () => {
          logger.warn(
            {},
            "interrupt: finishing the batches in flight; rerun the same command to resume",
          );
          abort.abort();
        };
        process.once("SIGINT", onSigint);
        const progress = await progressReporter(logger);
        try {
          const summary = await importRedis({
            redis,
            pool: db.pool,
            schema: config.database.schema,
            match: opts.match,
            history: opts.history,
            format: opts.format as FormatChoice,
            scanCount,
            batchSize,
            // The embedded database serves one connection; more transactions would only queue.
            concurrency: db.kind === "embedded" ? 1 : concurrency,
            // COPY FROM STDIN wedges the embedded server (README, embedded caveats): INSERTs only there.
            ...(db.kind === "embedded" ? { copyMinRows: Number.POSITIVE_INFINITY } : {}),
            dryRun: opts.dryRun ?? false,
            verify: opts.verify ?? false,
            ...(opts.rejects !== undefined ? { rejectsPath: opts.rejects } : {}),
            sourceLabel: source,
            signal: abort.signal,
            onProgress: progress.update,
            logger,
          });
          progress.stop();
          if (opts.json) {
            process.stdout.write(
              `${JSON.stringify({ ...summary, database: db.description, schema: config.database.schema })}\n`,
            );
          } else {
            const verb = summary.dryRun ? "would import" : "imported";
            process.stdout.write(
              `${source} -> ${db.description}, schema ${config.database.schema}: ` +
                `${verb} ${summary.threadsImported} threads (${summary.checkpointsImported} checkpoints, ${summary.writesImported} writes); ` +
                `skipped ${summary.skipped}, rejected ${summary.invalid}; formats ${JSON.stringify(summary.formats)}; ${summary.durationMs} ms\n`,
            );
            if (summary.verify) {
              process.stdout.write(
                `verified ${summary.verify.threads} threads: ${summary.verify.mismatches} mismatches\n`,
              );
            }
            if (summary.interrupted)
              process.stdout.write("interrupted: rerun the same command to resume\n");
          }
          const failed =
            summary.interrupted ||
            (summary.verify?.mismatches ?? 0) > 0 ||
            (summary.invalid > 0 && !opts.allowPartial);
          return failed ? EXIT.failure : EXIT.ok;
        } finally {
          progress.stop();
          process.removeListener("SIGINT", onSigint);
          redis.disconnect();
          await db.close();
        }
      },
      { json: opts.json ?? false },
    ),
  );
}

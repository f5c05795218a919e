import cliProgress from "cli-progress";
import { Option, type Command } from "commander";
import { Redis } from "ioredis";
import { openDatabase, redactUrl } from "../db/database.js";
import {
  FORMAT_CHOICES,
  importRedis,
  type FormatChoice,
  type ImportProgress,
} from "../importer/index.js";
import type { Logger } from "../logger.js";
import {
  addCommonOptions,
  createCliLogger,
  EXIT,
  loadCliConfig,
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
function progressReporter(logger: Logger): {
  update: (p: ImportProgress) => void;
  stop: () => void;
} {
  if (process.stderr.isTTY) {
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
  addCommonOptions(
    program
      .command("import-redis")
      .description(
        "import LangGraph checkpoints from Redis (every official and community layout); never writes to Redis",
      )
      .requiredOption("--redis-url <url>", "source Redis, e.g. redis://localhost:6379/0")
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
      .option("--json", "print one JSON object on stdout"),
  ).action((opts: ImportRedisCliOptions) =>
    runCommand(async () => {
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
      const config = loadCliConfig(opts);
      const logger = createCliLogger(config.log.level);

      const redis = new Redis(opts.redisUrl, {
        lazyConnect: true,
        maxRetriesPerRequest: 2,
        connectionName: "threadline-import",
      });
      redis.on("error", () => undefined);
      try {
        await redis.connect();
      } catch (err) {
        redis.disconnect();
        throw new Error(
          `cannot connect to Redis at ${redactUrl(opts.redisUrl)}: ${(err as Error).message}`,
        );
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
      const progress = progressReporter(logger);
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
          sourceLabel: redactUrl(opts.redisUrl),
          signal: abort.signal,
          onProgress: progress.update,
          logger,
        });
        progress.stop();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(summary)}\n`);
        } else {
          const verb = summary.dryRun ? "would import" : "imported";
          process.stdout.write(
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
    }),
  );
}

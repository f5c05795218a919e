import type { Command } from "commander";
import { cleanupInstalled, runCleanup } from "../cleanup/run.js";
import { parseDuration } from "../config/duration.js";
import { openDatabase } from "../db/database.js";
import { ThreadlineError } from "../errors.js";
import {
  addCommonOptions,
  createCliLogger,
  loadCliConfig,
  runCommand,
  UsageError,
  type CommonOptions,
} from "./context.js";

interface CleanupFlags extends CommonOptions {
  ttl?: string;
  batchSize?: string;
  maxRuntime?: string;
  pause?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Largest batch the config schema accepts; larger batches hold locks for too long. */
const MAX_BATCH_SIZE = 100_000;

/** `--ttl` / `--max-runtime`: a positive duration such as `7d`, `12h`, `30m`, `45s`. */
function durationFlag(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new UsageError(
      `${flag} must be a positive duration such as 7d, 12h, 30m or 45s (units ms, s, m, h, d, w); got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

function pauseFlag(value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n > 100) {
    throw new UsageError(
      `--pause must be a number from 0 (flat out) to 100, e.g. 3 to pause three times as long as each batch took; got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function batchSizeFlag(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_BATCH_SIZE) {
    throw new UsageError(
      `--batch-size must be a whole number from 1 to ${MAX_BATCH_SIZE}; got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * `threadline cleanup [--ttl <dur>] [--batch-size N] [--max-runtime <dur>] [--pause <ratio>]
 * [--dry-run] [--json]`:
 * deletes threads idle longer than the TTL now (defaults: `cleanup.ttl`, `cleanup.batchSize`,
 * `cleanup.maxRuntime` of the config), also applying `history.keepLatest`. `--dry-run` counts
 * what would go. `--json` prints `{threadsDeleted, checkpointsDeleted, dryRun, durationMs, ...}`.
 * Exit 2 for bad flags, 1 when the schema is not migrated or the database fails.
 */
export function registerCleanupCommand(program: Command): void {
  addCommonOptions(
    program
      .command("cleanup")
      .description("delete threads idle longer than the TTL now (--dry-run counts them instead)")
      .option(
        "--ttl <dur>",
        "idle time after which a thread is deleted, e.g. 7d (default cleanup.ttl)",
      )
      .option("--batch-size <n>", "threads per transaction (default cleanup.batchSize)")
      .option(
        "--max-runtime <dur>",
        "stop starting batches after this long (default cleanup.maxRuntime)",
      )
      .option(
        "--pause <ratio>",
        "after each batch, pause this many times its duration (default 2; 0 = flat out)",
      )
      .option("--dry-run", "count what would be deleted, delete nothing")
      .option("--json", "print one JSON object on stdout"),
  ).action((flags: CleanupFlags) =>
    runCommand(async () => {
      // Flags are checked before the config and the database, so a typo fails fast with exit 2.
      const ttlMs = flags.ttl === undefined ? undefined : durationFlag("--ttl", flags.ttl);
      const batchSize = flags.batchSize === undefined ? undefined : batchSizeFlag(flags.batchSize);
      const maxRuntimeMs =
        flags.maxRuntime === undefined
          ? undefined
          : durationFlag("--max-runtime", flags.maxRuntime);
      const pause = flags.pause === undefined ? undefined : pauseFlag(flags.pause);
      const config = loadCliConfig(flags);
      const logger = createCliLogger(config.log.level);
      const db = await openDatabase(config, logger);
      try {
        const schema = config.database.schema;
        if (!(await cleanupInstalled(db.pool, schema))) {
          throw new ThreadlineError(
            "SCHEMA_NOT_INSTALLED",
            `schema ${schema} has no Threadline cleanup functions; run \`threadline migrate\` first`,
            { details: { schema } },
          );
        }
        const result = await runCleanup(db.pool, {
          schema,
          ttlMs: ttlMs ?? config.cleanup.ttl,
          batchSize: batchSize ?? config.cleanup.batchSize,
          maxRuntimeMs: maxRuntimeMs ?? config.cleanup.maxRuntime,
          pause: pause ?? config.cleanup.pause,
          keepLatest: config.history.keepLatest,
          dryRun: flags.dryRun ?? false,
          logger,
        });
        if (flags.json) {
          process.stdout.write(
            `${JSON.stringify({
              threadsDeleted: result.threadsDeleted,
              checkpointsDeleted: result.checkpointsDeleted,
              dryRun: result.dryRun,
              durationMs: result.durationMs,
              historyCheckpointsDeleted: result.historyCheckpointsDeleted,
              complete: result.complete,
            })}\n`,
          );
        } else {
          const verb = result.dryRun ? "would delete" : "deleted";
          const history =
            config.history.keepLatest > 0
              ? `; history cap ${verb} ${result.historyCheckpointsDeleted} older checkpoints`
              : "";
          const rest = result.complete ? "" : " (stopped at --max-runtime; run again to continue)";
          process.stdout.write(
            `${verb} ${result.threadsDeleted} expired threads (${result.checkpointsDeleted} checkpoints)${history} in ${result.durationMs} ms${rest}\n`,
          );
        }
      } finally {
        await db.close();
      }
    }),
  );
}

import type { Command } from "commander";
import { cleanupInstalled, runCleanup } from "../cleanup/run.js";
import { cleanupOptions } from "../config/options.js";
import { openDatabase } from "../db/database.js";
import { ThreadlineError } from "../errors.js";
import {
  addCommonOptions,
  addDatabaseChoice,
  configFlag,
  createCliLogger,
  loadCliConfig,
  requireDatabaseChoice,
  runCommand,
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

/**
 * `threadline cleanup [--ttl <dur>] [--batch-size N] [--max-runtime <dur>] [--pause <ratio>]
 * [--dry-run] [--json] [--embedded]`:
 * deletes threads idle longer than the TTL now (defaults: `cleanup.ttl`, `cleanup.batchSize`,
 * `cleanup.maxRuntime` of the config), also applying `history.keepLatest`. `--dry-run` counts
 * what would go. `--json` prints `{threadsDeleted, checkpointsDeleted, dryRun, durationMs, ...}`.
 * Names the database it acts on; refuses the embedded one without `--embedded`.
 * Exit 2 for bad flags, 1 when the schema is not migrated or the database fails.
 */
export function registerCleanupCommand(program: Command): void {
  addDatabaseChoice(
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
    ),
  ).action((flags: CleanupFlags) =>
    runCommand(
      async () => {
        // Flags are checked by the config schema before the config and the database are read,
        // so a typo fails fast with exit 2.
        const cleanup: Record<string, unknown> = {};
        if (flags.ttl !== undefined) cleanup.ttl = configFlag("--ttl", "cleanup.ttl", flags.ttl);
        if (flags.batchSize !== undefined)
          cleanup.batchSize = configFlag("--batch-size", "cleanup.batchSize", flags.batchSize);
        if (flags.maxRuntime !== undefined)
          cleanup.maxRuntime = configFlag("--max-runtime", "cleanup.maxRuntime", flags.maxRuntime);
        if (flags.pause !== undefined)
          cleanup.pause = configFlag("--pause", "cleanup.pause", flags.pause);
        const config = loadCliConfig(flags, { cleanup });
        requireDatabaseChoice(config, flags);
        const logger = createCliLogger(config.log.level, { json: flags.json ?? false });
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
            ...cleanupOptions(config),
            dryRun: flags.dryRun ?? false,
            logger,
          });
          if (flags.json) {
            process.stdout.write(
              `${JSON.stringify({
                database: db.description,
                schema,
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
            const rest = result.complete
              ? ""
              : " (stopped at --max-runtime; run again to continue)";
            process.stdout.write(
              `${db.description}, schema ${schema}: ${verb} ${result.threadsDeleted} expired threads (${result.checkpointsDeleted} checkpoints)${history} in ${result.durationMs} ms${rest}\n`,
            );
          }
        } finally {
          await db.close();
        }
      },
      { json: flags.json ?? false },
    ),
  );
}

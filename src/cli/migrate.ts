import type { Command } from "commander";
import { openDatabase } from "../db/database.js";
import { distributeSchema, type DistributedTable } from "../db/citus.js";
import { migrate, pendingMigrations } from "../db/migrator.js";
import { quoteSchema } from "../db/identifier.js";
import { UsageError } from "./output.js";
import {
  addCommonOptions,
  addDatabaseChoice,
  createCliLogger,
  loadCliConfig,
  requireDatabaseChoice,
  runCommand,
  type CommonOptions,
} from "./context.js";

interface MigrateOptions extends CommonOptions {
  dryRun?: boolean;
  json?: boolean;
  distribute?: boolean;
  shardCount?: string;
}

/**
 * `threadline migrate [--dry-run] [--distribute [--shard-count N]] [--json] [--embedded]`:
 * applies pending migrations, or prints their SQL. `--distribute` then distributes the
 * thread-keyed tables with Citus (idempotent; `CITUS_NOT_INSTALLED`, exit 2, without Citus).
 * Names the database it acts on; refuses the embedded one without `--embedded`.
 */
export function registerMigrateCommand(program: Command): void {
  addDatabaseChoice(
    addCommonOptions(
      program
        .command("migrate")
        .description("apply pending database migrations (--dry-run prints the SQL instead)")
        .option("--dry-run", "print the SQL that would run, change nothing")
        .option(
          "--distribute",
          "then distribute the thread-keyed tables by thread_id with Citus (idempotent)",
        )
        .option("--shard-count <n>", "shards per table for --distribute (default: Citus' 32)")
        .option("--json", "print one JSON object on stdout"),
    ),
  ).action((opts: MigrateOptions) =>
    runCommand(
      async () => {
        const shardCount = parseShardCount(opts);
        const config = loadCliConfig(opts);
        requireDatabaseChoice(config, opts);
        const logger = createCliLogger(config.log.level, { json: opts.json ?? false });
        const db = await openDatabase(config, logger);
        try {
          const schema = config.database.schema;
          const database = db.description;
          if (opts.dryRun) {
            const pending = await pendingMigrations(db.pool, { schema });
            if (opts.json) {
              process.stdout.write(
                `${JSON.stringify({ database, schema, dryRun: true, pending: pending.map((m) => ({ version: m.version, name: m.name, sql: m.rendered })) })}\n`,
              );
            } else if (pending.length === 0) {
              process.stdout.write(`-- ${database}: schema ${schema} is up to date\n`);
            } else {
              process.stdout.write(`-- ${database}: schema ${schema}\n`);
              for (const m of pending)
                process.stdout.write(`-- ${m.version} ${m.name}\n${m.rendered}\n`);
            }
            if (opts.distribute && !opts.json) {
              process.stdout.write(
                `-- --distribute (Citus)\nSELECT * FROM ${quoteSchema(schema)}.threadline_distribute(${shardCount ?? "NULL"});\n`,
              );
            }
            return;
          }
          const result = await migrate(db.sessionPool, { schema, logger });
          let distributed: DistributedTable[] | undefined;
          if (opts.distribute) {
            distributed = await distributeSchema(db.sessionPool, {
              schema,
              database,
              ...(shardCount !== undefined ? { shardCount } : {}),
            });
          }
          if (opts.json) {
            process.stdout.write(
              `${JSON.stringify({ database, schema, dryRun: false, applied: result.applied, ...(distributed ? { distributed } : {}) })}\n`,
            );
          } else {
            process.stdout.write(
              result.applied.length === 0
                ? `${database}: schema ${schema} is up to date\n`
                : `${database}: applied ${result.applied.map((m) => `${m.version}_${m.name}`).join(", ")} to schema ${schema}\n`,
            );
            if (distributed) {
              const now = distributed.filter((t) => t.distributedNow).map((t) => t.table);
              process.stdout.write(
                now.length === 0
                  ? `${database}: schema ${schema} is already distributed\n`
                  : `${database}: distributed ${now.join(", ")} by thread_id\n`,
              );
            }
          }
        } finally {
          await db.close();
        }
      },
      { json: opts.json ?? false },
    ),
  );
}

/** `--shard-count` as a positive integer; a usage error otherwise or without `--distribute`. */
function parseShardCount(opts: MigrateOptions): number | undefined {
  if (opts.shardCount === undefined) return undefined;
  const n = Number(opts.shardCount);
  if (!opts.distribute) throw new UsageError("--shard-count needs --distribute");
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError(`--shard-count must be a positive integer, got "${opts.shardCount}"`);
  }
  return n;
}

import type { Command } from "commander";
import { openDatabase } from "../db/database.js";
import { migrate, pendingMigrations } from "../db/migrator.js";
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
}

/**
 * `threadline migrate [--dry-run] [--json] [--embedded]`: applies pending migrations, or prints
 * their SQL. Names the database it acts on; refuses the embedded one without `--embedded`.
 */
export function registerMigrateCommand(program: Command): void {
  addDatabaseChoice(
    addCommonOptions(
      program
        .command("migrate")
        .description("apply pending database migrations (--dry-run prints the SQL instead)")
        .option("--dry-run", "print the SQL that would run, change nothing")
        .option("--json", "print one JSON object on stdout"),
    ),
  ).action((opts: MigrateOptions) =>
    runCommand(
      async () => {
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
            return;
          }
          const result = await migrate(db.sessionPool, { schema, logger });
          if (opts.json) {
            process.stdout.write(
              `${JSON.stringify({ database, schema, dryRun: false, applied: result.applied })}\n`,
            );
          } else {
            process.stdout.write(
              result.applied.length === 0
                ? `${database}: schema ${schema} is up to date\n`
                : `${database}: applied ${result.applied.map((m) => `${m.version}_${m.name}`).join(", ")} to schema ${schema}\n`,
            );
          }
        } finally {
          await db.close();
        }
      },
      { json: opts.json ?? false },
    ),
  );
}

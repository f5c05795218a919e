#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerMigrateCommand } from "./cli/migrate.js";
import { registerCommands } from "./cli/commands.js";
import { EXIT } from "./cli/context.js";
import { packageVersion } from "./paths.js";

const program = new Command("threadline")
  .description("Durable PostgreSQL memory for LangGraph agents")
  // From package.json itself: npm_package_version is only set under `npm run`, and is the
  // version of whatever package runs the script (a project that installed Threadline).
  .version(packageVersion())
  .exitOverride()
  .showHelpAfterError();

registerMigrateCommand(program);
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; every other parse problem is a usage error.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    throw err;
  }
}

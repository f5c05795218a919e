#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerMigrateCommand } from "./cli/migrate.js";
import { registerCommands } from "./cli/commands.js";
import { EXIT } from "./cli/output.js";
import { packageVersion } from "./paths.js";

const program = new Command("threadline")
  .description("Durable PostgreSQL memory for LangGraph agents")
  // From package.json itself: npm_package_version is only set under `npm run`, and is the
  // version of whatever package runs the script (a project that installed Threadline).
  .version(packageVersion())
  .exitOverride()
  // The fix, not a screenful of help: the error line says what is wrong, this says where to look.
  .showHelpAfterError("(run with --help for the usage)");

registerMigrateCommand(program);
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; every other parse problem is a usage error.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    // Commander printed the error on stderr; a --json caller still gets one JSON object.
    if (err.exitCode !== 0 && process.argv.includes("--json")) {
      const message = err.message.replace(/^error: /, "");
      process.stdout.write(`${JSON.stringify({ error: { code: "USAGE_ERROR", message } })}\n`);
    }
  } else {
    throw err;
  }
}

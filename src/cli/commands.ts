import type { Command } from "commander";
import { registerCleanupCommand } from "./cleanup.js";
import { registerImportRedisCommand } from "./import-redis.js";
import { registerServeCommand } from "./serve.js";

/** Registers the commands of the other capabilities (serve, cleanup, import-redis). */
export function registerCommands(program: Command): void {
  // Filled in as each capability lands.
  registerCleanupCommand(program);
  registerServeCommand(program);
  registerImportRedisCommand(program);
}

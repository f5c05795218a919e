import type { Command } from "commander";

/** Registers the commands of the other capabilities (serve, cleanup, import-redis). */
export function registerCommands(_program: Command): void {
  // Filled in as each capability lands.
}

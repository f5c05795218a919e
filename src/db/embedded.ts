import type { ThreadlineConfig } from "../config/schema.js";
import { ThreadlineError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Database } from "./database.js";

/**
 * Starts the embedded development database (see ../shared/EMBEDDED.md): PGlite's socket server
 * in a child process, one pg connection, a lock file on the data directory.
 * (Placeholder until the service work lands.)
 */
export function openEmbeddedDatabase(_config: ThreadlineConfig, _logger: Logger): Promise<Database> {
  return Promise.reject(
    new ThreadlineError("DB_UNAVAILABLE", "the embedded database is not available yet; set DATABASE_URL"),
  );
}

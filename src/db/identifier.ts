import { RESERVED_SCHEMA_RE, SCHEMA_NAME_RE, schemaNameProblem } from "../config/schema.js";
import { ThreadlineError } from "../errors.js";

/**
 * Validates a schema name and returns it escaped as an SQL identifier. Validation keeps names
 * predictable for operators; escaping (doubling quotes, as `pg`'s escapeIdentifier does) makes
 * the SQL safe even if the pattern were ever loosened.
 */
export function quoteSchema(schema: unknown): string {
  if (typeof schema !== "string" || !SCHEMA_NAME_RE.test(schema)) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `Invalid schema name ${JSON.stringify(schema)}: it must match ^[a-z_][a-z0-9_]{0,62}$ (lowercase letters, digits and underscores, not starting with a digit)`,
    );
  }
  if (RESERVED_SCHEMA_RE.test(schema)) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `Invalid schema name ${JSON.stringify(schema)}: ${schemaNameProblem(schema)}`,
    );
  }
  return `"${schema.replace(/"/g, '""')}"`;
}

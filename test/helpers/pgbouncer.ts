import { inject } from "vitest";

/**
 * The tests' PgBouncer in transaction mode in front of the test database (started by the global
 * setup test/setup/pgbouncer.ts, or TEST_PGBOUNCER_URL). Throws, with the fix, when there is
 * none: the pooler tests fail rather than skip, on CI and locally.
 */
export function pgbouncerUrl(): string {
  const error = inject("pgbouncerError");
  if (error) throw new Error(error);
  return inject("pgbouncerUrl");
}

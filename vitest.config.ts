import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The Citus suite is opt-in: `npm run test:citus` with CITUS_URL (vitest.citus.config.ts).
    exclude: [...configDefaults.exclude, "test/citus/**"],
    // The conformance suite and the fault tests need real servers and a few seconds each.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration files each use their own schema / Redis prefix, so they may run in parallel;
    // two workers match the two cores of the CI machine.
    pool: "forks",
    maxWorkers: 2,
    globals: true,
    // A sampler of the sessions the run holds on Postgres (its teardown fails the run near the
    // limit), a PgBouncer in transaction mode of the run's own for the pooler tests, and a
    // private temp folder for the run (its teardown fails the run on leftovers).
    globalSetup: [
      "test/setup/connections.ts",
      "test/setup/pgbouncer.ts",
      "test/setup/temp-dirs.ts",
    ],
    setupFiles: ["test/setup/temp-files.ts"],
    reporters: ["default"],
  },
});

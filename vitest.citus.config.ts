import { defineConfig } from "vitest/config";

// `npm run test:citus`: the opt-in suite against a Citus coordinator (CITUS_URL), never part of
// `npm test` (vitest.config.ts excludes test/citus). See README "Running on Citus".
export default defineConfig({
  test: {
    include: ["test/citus/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
    // One file at a time: every file distributes schemas (DDL on every node).
    maxWorkers: 1,
    globals: true,
    globalSetup: ["test/setup/temp-dirs.ts"],
    setupFiles: ["test/setup/temp-files.ts"],
    reporters: ["default"],
  },
});

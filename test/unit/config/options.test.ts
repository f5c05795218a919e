import { configLeaves } from "../../../src/config/keys.js";
import { loadConfig } from "../../../src/config/load.js";
import {
  cleanupOptions,
  fallbackCheckpointerOptions,
  postgresCheckpointerOptions,
} from "../../../src/config/options.js";
import { configSchema } from "../../../src/config/schema.js";
import { emptyConfigFile, sampleFor } from "../../helpers/config.js";

const FILE = emptyConfigFile();
const ADAPTERS = {
  postgres: postgresCheckpointerOptions,
  fallback: fallbackCheckpointerOptions,
  cleanup: cleanupOptions,
};

/**
 * The option names of each library interface, minus its wiring. Kept in step with the
 * interfaces by the compiler: the adapters return `Required<Omit<Options, Wiring>>`, so a new
 * option fails typecheck until it is mapped, and this list then fails the test until it is named.
 */
const OPTION_KEYS = {
  postgres: [
    "schema",
    "storage",
    "preparedStatements",
    "coalesceWrites",
    "deltaCacheSize",
    "deltaCacheMaxBytes",
    "maxDeltaDepth",
    "retry",
  ],
  fallback: [
    "enabled",
    "maxPendingEntries",
    "maxPendingBytes",
    "probeIntervalMs",
    "probeMaxIntervalMs",
    "operationTimeoutMs",
    "cacheMaxThreads",
    "cacheMaxBytes",
    "cacheCheckpointsPerNamespace",
    "replayConcurrency",
    "retry",
  ],
  cleanup: ["schema", "ttlMs", "batchSize", "maxRuntimeMs", "pause", "keepLatest"],
};

/** Config keys that feed library options (each must change what some adapter returns). */
const FEEDS_OPTIONS =
  /^(checkpoint|fallback|cleanup|history)\.|^database\.(schema|preparedStatements|retry\.)/;
/** Keys of those sections that configure the service around the library, not an option. */
const SERVICE_ONLY = new Set(["cleanup.enabled", "cleanup.schedule"]);

describe("config -> library options", () => {
  const defaults = configSchema.parse({});

  it.each(Object.keys(ADAPTERS) as Array<keyof typeof ADAPTERS>)(
    "the %s adapter sets every option of its library interface",
    (name) => {
      const options = ADAPTERS[name](defaults) as Record<string, unknown>;
      expect(Object.keys(options).sort()).toEqual([...OPTION_KEYS[name]].sort());
      for (const [key, value] of Object.entries(options)) expect(value, key).toBeDefined();
    },
  );

  const feeding = configLeaves().filter(
    (leaf) => FEEDS_OPTIONS.test(leaf.path) && !SERVICE_ONLY.has(leaf.path),
  );

  it("covers the keys a user tunes (maxDeltaDepth, deltaCacheSize, replay and cache sizes)", () => {
    const paths = feeding.map((l) => l.path);
    for (const path of [
      "checkpoint.maxDeltaDepth",
      "checkpoint.deltaCacheSize",
      "fallback.replayConcurrency",
      "fallback.cacheCheckpointsPerNamespace",
      "fallback.cacheMaxThreads",
      "fallback.retry.attempts",
    ])
      expect(paths).toContain(path);
  });

  it.each(feeding.map((leaf) => [leaf.path, leaf] as const))(
    "%s reaches a library option through its env variable",
    (_path, leaf) => {
      const before = Object.fromEntries(
        Object.entries(ADAPTERS).map(([name, adapt]) => [name, adapt(defaults)]),
      );
      const config = loadConfig(FILE, { env: { [leaf.envName]: sampleFor(leaf).text } });
      const after = Object.fromEntries(
        Object.entries(ADAPTERS).map(([name, adapt]) => [name, adapt(config)]),
      );
      expect(after).not.toEqual(before);
    },
  );

  it("maps durations to milliseconds and retry settings to RetryOptions", () => {
    const config = loadConfig(FILE, {
      env: {
        THREADLINE_FALLBACK_RETRY_BASE_DELAY: "20ms",
        THREADLINE_FALLBACK_PROBE_INTERVAL: "2s",
        THREADLINE_DATABASE_RETRY_MAX_DELAY: "3s",
      },
    });
    expect(fallbackCheckpointerOptions(config).retry).toEqual({
      attempts: 2,
      baseDelayMs: 20,
      maxDelayMs: 50,
    });
    expect(fallbackCheckpointerOptions(config).probeIntervalMs).toBe(2_000);
    expect(postgresCheckpointerOptions(config).retry.maxDelayMs).toBe(3_000);
  });
});

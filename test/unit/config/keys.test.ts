import { configLeaves, envNameFor, parseLeafValue } from "../../../src/config/keys.js";
import { loadConfig } from "../../../src/config/load.js";
import { configSchema } from "../../../src/config/schema.js";
import { emptyConfigFile, sampleFor, valueAt } from "../../helpers/config.js";

const FILE = emptyConfigFile();
const DEFAULTS = configSchema.parse({});

describe("config keys derived from the zod schema", () => {
  it("gives every key, nested sections included, a unique THREADLINE_<SECTION>_<KEY> name", () => {
    const leaves = configLeaves();
    expect(leaves.length).toBeGreaterThan(60);
    for (const leaf of leaves) {
      expect(leaf.envName).toMatch(/^THREADLINE_[A-Z0-9_]+$/);
      expect(leaf.envName).toBe(envNameFor(leaf.path));
    }
    expect(new Set(leaves.map((l) => l.envName)).size).toBe(leaves.length);
    const byPath = new Map(leaves.map((l) => [l.path, l.envName]));
    expect(byPath.get("server.cors.origins")).toBe("THREADLINE_SERVER_CORS_ORIGINS");
    expect(byPath.get("database.pool.maxOverflow")).toBe("THREADLINE_DATABASE_POOL_MAX_OVERFLOW");
    expect(byPath.get("fallback.retry.baseDelay")).toBe("THREADLINE_FALLBACK_RETRY_BASE_DELAY");
  });

  it("includes optional keys without a default (they used to need a hand-kept list)", () => {
    const paths = configLeaves().map((l) => l.path);
    for (const path of ["database.queryTimeout", "database.directUrl", "server.host"])
      expect(paths).toContain(path);
  });

  it.each(configLeaves().map((leaf) => [leaf.envName, leaf] as const))(
    "honours %s",
    (envName, leaf) => {
      const sample = sampleFor(leaf);
      const config = loadConfig(FILE, { env: { [envName]: sample.text } });
      expect(valueAt(config, leaf.path)).toEqual(sample.value);
      expect(valueAt(config, leaf.path)).not.toEqual(valueAt(DEFAULTS, leaf.path));
    },
  );

  it("reads THREADLINE_DATABASE_QUERY_TIMEOUT (it was silently ignored)", () => {
    const config = loadConfig(FILE, { env: { THREADLINE_DATABASE_QUERY_TIMEOUT: "45s" } });
    expect(config.database.queryTimeout).toBe(45_000);
  });

  it("reports a bad value of a derived variable under its key", () => {
    expect(() =>
      loadConfig(FILE, { env: { THREADLINE_FALLBACK_REPLAY_CONCURRENCY: "many" } }),
    ).toThrow(/fallback\.replayConcurrency: /);
  });

  it("keeps the documented conventional names, and the THREADLINE_ name of the same key wins", () => {
    const config = loadConfig(FILE, {
      env: {
        DATABASE_URL: "postgres://app@db/app",
        PORT: "9090",
        THREADLINE_API_KEYS: "key-aaaaaaaaaaaaaaaa,key-bbbbbbbbbbbbbbbb",
        OPENAI_API_KEY: "sk-test",
      },
    });
    expect(config.database.url).toBe("postgres://app@db/app");
    expect(config.server.port).toBe(9090);
    expect(config.auth.apiKeys).toEqual(["key-aaaaaaaaaaaaaaaa", "key-bbbbbbbbbbbbbbbb"]);
    expect(config.model.apiKey).toBe("sk-test");
    const both = loadConfig(FILE, { env: { PORT: "9090", THREADLINE_SERVER_PORT: "9191" } });
    expect(both.server.port).toBe(9191);
  });

  it("reads a map key (graphs) as comma-separated name=value pairs", () => {
    const config = loadConfig(FILE, {
      env: { THREADLINE_GRAPHS: "a=/srv/a.mjs:graph, b=/srv/b.ts:make" },
    });
    expect(config.graphs).toEqual({ a: "/srv/a.mjs:graph", b: "/srv/b.ts:make" });
  });
});

describe("parseLeafValue (CLI flags)", () => {
  it("accepts what the key accepts, durations in ms", () => {
    expect(parseLeafValue("cleanup.ttl", "3d")).toEqual({ ok: true, value: 3 * 86_400_000 });
    expect(parseLeafValue("cleanup.batchSize", "500")).toEqual({ ok: true, value: 500 });
    expect(parseLeafValue("server.port", "0")).toEqual({ ok: true, value: 0 });
  });

  it("refuses what the key refuses, with the schema's reason", () => {
    const cases: Array<[string, string]> = [
      ["cleanup.ttl", "7x"],
      ["cleanup.ttl", "0s"],
      ["cleanup.batchSize", "0"],
      ["cleanup.batchSize", "100001"],
      ["cleanup.batchSize", "ten"],
      ["cleanup.pause", "101"],
      ["server.port", "65536"],
      ["server.port", "80.5"],
    ];
    for (const [path, raw] of cases) {
      const parsed = parseLeafValue(path, raw);
      expect(parsed.ok, `${path}=${raw}`).toBe(false);
      if (!parsed.ok) expect(parsed.problem.length).toBeGreaterThan(5);
    }
  });
});

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../../src/errors.js";
import { envNameFor, loadConfig } from "../../../src/config/load.js";
import { parseDuration } from "../../../src/config/duration.js";
import { tempDir } from "../../helpers/tmp.js";

function file(content: string): string {
  const path = join(tempDir("tl-config-"), "config.yaml");
  writeFileSync(path, content);
  return path;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("loads the shipped config.yaml with its documented defaults", () => {
    const config = loadConfig("config.yaml", { env: {} });
    expect(config.database.schema).toBe("public");
    expect(config.cleanup.ttl).toBe(7 * 86_400_000);
    expect(config.server.port).toBe(8787);
    expect(config.fallback.enabled).toBe(true);
  });

  it("uses defaults when no file exists", () => {
    const config = loadConfig(undefined, { env: { THREADLINE_CONFIG: undefined } });
    expect(config.checkpoint.storage).toBe("delta");
    expect(config.checkpoint.coalesceWrites).toBe(true);
  });

  it("turns write coalescing off from the environment", () => {
    const config = loadConfig(undefined, {
      env: { THREADLINE_CONFIG: undefined, THREADLINE_CHECKPOINT_COALESCE_WRITES: "false" },
    });
    expect(config.checkpoint.coalesceWrites).toBe(false);
  });

  it("applies env overrides with precedence defaults < file < env < flags", () => {
    const path = file("cleanup:\n  ttl: 3d\nserver:\n  port: 9000\n");
    const config = loadConfig(path, {
      env: {
        THREADLINE_CLEANUP_TTL: "12h",
        DATABASE_URL: "postgres://u@h/db",
        THREADLINE_API_KEYS: "k".repeat(16) + ",  " + "z".repeat(20),
      },
      overrides: { server: { port: 9100 } },
    });
    expect(config.cleanup.ttl).toBe(12 * 3_600_000);
    expect(config.server.port).toBe(9100);
    expect(config.database.url).toBe("postgres://u@h/db");
    expect(config.auth.apiKeys).toEqual(["k".repeat(16), "z".repeat(20)]);
  });

  it("interpolates ${VAR} and ${VAR:-default}", () => {
    const path = file(
      "database:\n  schema: ${TL_SCHEMA}\n  applicationName: ${TL_APP:-fallback_app}\n",
    );
    const config = loadConfig(path, { env: { TL_SCHEMA: "tenant_a" } });
    expect(config.database.schema).toBe("tenant_a");
    expect(config.database.applicationName).toBe("fallback_app");
  });

  it("reports every problem at once, each with its fix", () => {
    const path = file(
      [
        "database:",
        "  schema: Bad-Name",
        "  pool:",
        "    size: 0",
        "cleanup:",
        "  ttl: 7x",
        "  unknownKey: 1",
        "auth:",
        "  apiKeys: [literal-secret-in-the-file]",
        "model:",
        "  apiKey: ${MISSING_KEY}",
      ].join("\n"),
    );
    const found = problems(() => loadConfig(path, { env: {} }));
    expect(found.join("\n")).toMatch(/database\.schema: a schema name must match/);
    expect(found.join("\n")).toMatch(/database\.pool\.size/);
    expect(found.join("\n")).toMatch(/cleanup\.ttl: expected a duration like "7d"/);
    expect(found.join("\n")).toMatch(/unknown key\(s\) "unknownKey"/);
    expect(found.join("\n")).toMatch(
      /auth\.apiKeys: secrets must not be written in the config file/,
    );
    expect(found.join("\n")).toMatch(/MISSING_KEY is not set/);
    expect(found.length).toBeGreaterThanOrEqual(6);
  });

  it.each(["information_schema", "pg_catalog", "pg_toast", "pg_mine"])(
    "refuses the Postgres system schema %j as database.schema, naming the fix",
    (name) => {
      const found = problems(() => loadConfig(file(`database:\n  schema: ${name}\n`), { env: {} }));
      expect(found.join("\n")).toMatch(
        /database\.schema: .*Postgres system schema.*choose another/,
      );
    },
  );

  it("refuses a password written in the file's database.url", () => {
    const path = file("database:\n  url: postgres://app:hunter2@db/prod\n");
    expect(problems(() => loadConfig(path, { env: {} })).join("\n")).toMatch(/contains a password/);
  });

  it("rejects malformed YAML and a missing explicit file with CONFIG_INVALID", () => {
    expect(() => loadConfig(file("database: [unclosed"), { env: {} })).toThrow(ConfigError);
    expect(() => loadConfig("/nonexistent/config.yaml", { env: {} })).toThrow(/file not found/);
    expect(() => loadConfig(file("- a\n- b\n"), { env: {} })).toThrow(/mapping/);
  });

  it("refuses a runs.staleAfter that a live run's heartbeats could miss, naming the fix", () => {
    const found = problems(() =>
      loadConfig(undefined, {
        env: { THREADLINE_RUNS_HEARTBEAT_INTERVAL: "5s", THREADLINE_RUNS_STALE_AFTER: "8s" },
      }),
    );
    expect(found.join("\n")).toMatch(/runs\.staleAfter.*twice runs\.heartbeatInterval.*raise/);
    expect(
      loadConfig(undefined, {
        env: { THREADLINE_RUNS_HEARTBEAT_INTERVAL: "5s", THREADLINE_RUNS_STALE_AFTER: "11s" },
      }).runs.staleAfter,
    ).toBe(11_000);
  });

  it("names env variables after the config path", () => {
    expect(envNameFor("database.pool.maxOverflow")).toBe("THREADLINE_DATABASE_POOL_MAX_OVERFLOW");
  });
});

describe("parseDuration", () => {
  it.each([
    ["7d", 604_800_000],
    ["12h", 43_200_000],
    ["30m", 1_800_000],
    ["45s", 45_000],
    ["250ms", 250],
  ])("parses %s", (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(["7x", "-1d", "0s", "", "d", "1.5.5h", "10"])("rejects %j", (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});

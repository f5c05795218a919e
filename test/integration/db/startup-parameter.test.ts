import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { FallbackCheckpointer } from "../../../src/checkpoint/fallback/index.js";
import { isThreadlineError } from "../../../src/errors.js";
import { RefusingPooler } from "../../helpers/fake-pooler.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

describe("a connection pooler that refuses the statement_timeout startup parameter", () => {
  let pooler: RefusingPooler;
  beforeAll(async () => {
    pooler = await RefusingPooler.start("statement_timeout");
  });
  afterAll(async () => {
    await pooler?.close();
  });

  it("makes threadline serve exit 2 with one line naming the parameter and the setting, not start in fallback", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "serve", "--port", "0", "--host", "127.0.0.1"],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "/root",
          DATABASE_URL: pooler.url,
          THREADLINE_CLEANUP_ENABLED: "false",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.stdout.on("data", () => undefined);
    // Before the fix the service started (in fallback mode) and never exited: do not leak it.
    const kill = setTimeout(() => child.kill("SIGKILL"), 45_000);
    const [code] = (await once(child, "exit")) as [number | null];
    clearTimeout(kill);
    expect(stderr).not.toContain("threadline listening");
    expect(stderr).not.toContain("fallback");
    expect(code).toBe(2);
    // Besides the JSON log lines, exactly one human line: the error, with its fix.
    const plain = stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{"));
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(/^threadline: /);
    expect(plain[0]).toContain("statement_timeout");
    expect(plain[0]).toContain("database.statementTimeout");
    expect(plain[0]).toContain("ignore_startup_parameters");
    expect(plain[0]).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  });

  it("fails FallbackCheckpointer.start() with CONFIG_INVALID instead of entering fallback mode", async () => {
    const primary = PostgresCheckpointer.fromConnString(pooler.url, {
      pool: { connectionTimeoutMillis: 5_000 },
    });
    const fallback = new FallbackCheckpointer(primary, { setup: () => primary.setup() });
    try {
      const failure = await fallback.start().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isThreadlineError(failure, "CONFIG_INVALID")).toBe(true);
      expect((failure as Error).message).toContain("statement_timeout");
      expect(fallback.status().mode).toBe("primary");
      expect(fallback.status().transitions).toBe(0);
      // A put is refused too, not acknowledged into memory.
      const put = await primary.getTuple({ configurable: { thread_id: "t" } }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isThreadlineError(put, "CONFIG_INVALID")).toBe(true);
    } finally {
      await fallback.close();
    }
    expect(pooler.attempts).toBeGreaterThan(0);
  });
});

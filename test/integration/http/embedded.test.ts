import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { UIMessage } from "ai";
import { spawnServe, type ServeProcess } from "./cli-helpers.js";
import { aiChat, say } from "./helpers.js";

/** Whether any process still serves PGlite on `dataDir`. */
function pgliteRunning(dataDir: string): boolean {
  try {
    return execFileSync("pgrep", ["-f", dataDir]).toString().trim() !== "";
  } catch {
    return false;
  }
}

describe("embedded database (no DATABASE_URL)", () => {
  const dir = mkdtempSync(join(tmpdir(), "threadline-embedded-"));
  const dataDir = join(dir, "data");
  const env = {
    THREADLINE_DATABASE_EMBEDDED_DATA_DIR: dataDir,
    THREADLINE_CLEANUP_ENABLED: "false",
  };
  let serve: ServeProcess | undefined;

  afterAll(() => {
    if (serve && serve.child.exitCode === null) serve.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves on PGlite, keeps a chat across restarts (clean and kill -9), and locks its directory", async () => {
    const id = `emb-${randomUUID()}`;
    // The first start creates the cluster: seconds, but minutes on a loaded machine.
    serve = await spawnServe(env, 300_000);
    expect(serve.logs()).toContain("using the embedded database");
    expect(serve.logs()).toContain("development store");
    const db = (await (await fetch(`${serve.url}/health/db`)).json()) as {
      status: string;
      pool: { max: number };
    };
    expect(db).toMatchObject({ status: "ok", pool: { max: 1 } });
    const chat = aiChat(serve.url, id);
    expect(await say(chat, "one")).toContain("turn 1");
    expect(await say(chat, "two")).toContain("turn 2");

    // A second service on the same data directory is refused while the first runs.
    await expect(spawnServe(env, 30_000)).rejects.toThrow(/in use by process/);

    serve.child.kill("SIGTERM");
    expect(await serve.exited).toBe(0);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);

    serve = await spawnServe(env);
    const loaded = (await (await fetch(`${serve.url}/api/chat/${id}/messages`)).json()) as {
      messages: UIMessage[];
    };
    expect(loaded.messages).toHaveLength(4);
    expect(await say(aiChat(serve.url, id, { messages: loaded.messages }), "three")).toContain(
      "turn 3",
    );

    // A hard kill leaves a stale lock; the PGlite server notices its parent is gone and stops.
    serve.child.kill("SIGKILL");
    await serve.exited;
    for (let i = 0; i < 100 && pgliteRunning(dataDir); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(pgliteRunning(dataDir)).toBe(false);

    serve = await spawnServe(env);
    expect(serve.logs()).toContain("stale embedded database lock");
    expect(await say(aiChat(serve.url, id), "four")).toContain("turn 4");
    serve.child.kill("SIGTERM");
    expect(await serve.exited).toBe(0);
  }, 600_000);
});

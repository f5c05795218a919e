import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BaseMessage } from "@langchain/core/messages";
import type pg from "pg";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import {
  dropSchema,
  requirePostgres,
  TEST_DATABASE_URL,
  testPool,
  uniqueSchema,
} from "../../../helpers/db.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { spawnServe, type ServeProcess } from "../../http/cli-helpers.js";
import { chatBody, readSse } from "../../http/helpers.js";
import { sleep } from "./setup.js";

/** How long the network drops every packet. */
const HOLE_MS = 20_000;
/**
 * README's bound on leaving fallback after the network heals, with default config:
 * `database.queryTimeout` (35 s: black-holed pooled connections are given up) +
 * `fallback.probeMaxInterval` x 1.25 (37.5 s: the next probe, on a fresh connection) + replay.
 */
const RECOVERY_BOUND_MS = 35_000 + 37_500 + 10_000;
/** README's bound on a shutdown: 2 x server.shutdownTimeout + 4 x 5 s, plus the 2 s exit delay. */
const SHUTDOWN_BOUND_MS = 2 * 10_000 + 4 * 5_000 + 2_000;

interface Health {
  mode: string;
  pending: number;
}

/**
 * `threadline serve` with default config (only the rate limit raised for the load) behind a TCP
 * proxy that black-holes every established connection: sockets stay open, bytes vanish, nothing
 * errors. That is what a lost NAT or firewall state does, and what left the service in fallback
 * for minutes and hung its shutdown (issue 11 item 5).
 */
describe("a network that silently drops packets on established connections (default config)", () => {
  const dirs: string[] = [];
  const running: Array<{ serve: ServeProcess; proxy: TcpProxy; schema: string }> = [];
  let admin: pg.Pool;

  beforeAll(async () => {
    await requirePostgres();
    admin = testPool(2);
  });
  afterAll(async () => {
    for (const { serve, proxy, schema } of running) {
      if (serve.child.exitCode === null) serve.child.kill("SIGKILL");
      await proxy.close();
      await dropSchema(admin, schema);
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await admin?.end();
  });

  async function start(prefix: string) {
    const schema = uniqueSchema(prefix);
    const proxy = await TcpProxy.start();
    const dir = mkdtempSync(join(tmpdir(), "tl-blackhole-"));
    dirs.push(dir);
    const config = join(dir, "config.yaml");
    writeFileSync(config, "server:\n  rateLimit:\n    max: 1000000\n");
    const serve = await spawnServe(
      {
        DATABASE_URL: proxy.url(TEST_DATABASE_URL),
        THREADLINE_CONFIG: config,
        THREADLINE_DATABASE_SCHEMA: schema,
        THREADLINE_CLEANUP_ENABLED: "false",
        THREADLINE_LOG_LEVEL: process.env.TEST_SERVE_LOG_LEVEL ?? "info",
        // tsx compiles the CLI at start: slow on a busy machine.
      },
      180_000,
    );
    running.push({ serve, proxy, schema });
    return { schema, proxy, serve };
  }

  const health = async (url: string): Promise<Health> => {
    const res = await fetch(`${url}/health/db`);
    return (await res.json()) as Health;
  };

  /**
   * Chats on `threads` threads, a turn every `pauseMs` each, until stopped; records acks. Light
   * on purpose: how fast a replay catches up with heavy traffic is another test's subject.
   */
  function load(url: string, threads: number, pauseMs = 500) {
    const acked = new Map<string, string[]>();
    let stopped = false;
    const loops = Array.from({ length: threads }, async (_, k) => {
      const id = `bh-${k}-${randomUUID()}`;
      acked.set(id, []);
      for (let turn = 0; !stopped; turn++) {
        const text = `turn ${turn} of ${id}`;
        try {
          const res = await fetch(`${url}/api/chat`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: chatBody(id, text),
          });
          if (res.status === 200) {
            const events = await readSse(res);
            if (events.some((e) => e !== "[DONE]" && e.type === "finish"))
              acked.get(id)!.push(text);
          } else {
            await res.body?.cancel();
          }
        } catch {
          // the service is shutting down
        }
        await sleep(pauseMs);
      }
    });
    return {
      acked,
      async stop() {
        stopped = true;
        await Promise.all(loops);
      },
    };
  }

  async function waitForMode(url: string, mode: string, timeoutMs: number): Promise<number> {
    const started = Date.now();
    for (;;) {
      const h = await health(url).catch(() => undefined);
      if (h?.mode === mode && (mode === "fallback" || h.pending === 0)) return Date.now() - started;
      if (Date.now() - started > timeoutMs) {
        throw new Error(`still not in mode ${mode} after ${timeoutMs} ms: ${JSON.stringify(h)}`);
      }
      await sleep(500);
    }
  }

  async function sigterm(serve: ServeProcess): Promise<{ code: number | null; ms: number }> {
    const started = Date.now();
    serve.child.kill("SIGTERM");
    const code = await Promise.race([serve.exited, sleep(SHUTDOWN_BOUND_MS + 15_000)]);
    return { code: code as number | null, ms: Date.now() - started };
  }

  it.concurrent(
    "leaves fallback within the documented bound after a 20 s black hole, loses no acknowledged turn, and SIGTERM completes",
    async () => {
      const { schema, proxy, serve } = await start("bh_heal");
      const traffic = load(serve.url, 2, 1_000);
      await sleep(2_000);

      proxy.blackHole();
      const holeStarted = Date.now();
      // fallback.operationTimeout (15 s) after the first unanswered call; generous under load.
      const fallbackAfter = await waitForMode(serve.url, "fallback", 60_000);
      await sleep(Math.max(2_000, HOLE_MS - (Date.now() - holeStarted)));
      expect((await health(serve.url)).mode).toBe("fallback");
      proxy.heal();
      const holeMs = Date.now() - holeStarted;

      const recoveredAfter = await waitForMode(serve.url, "primary", RECOVERY_BOUND_MS).catch(
        async (err: unknown) => {
          const metrics = (await (await fetch(`${serve.url}/metrics`)).text())
            .split("\n")
            .filter((l) => l.startsWith("threadline_fallback"));
          // What the service saw, for the failure message.
          const lines = serve
            .logs()
            .split("\n")
            .filter((l) => /fallback|probe|replay|Postgres/.test(l));
          throw new Error(
            `${(err as Error).message}\n${metrics.join("\n")}\n${lines.slice(-30).join("\n")}`,
          );
        },
      );
      console.info(
        `black hole ${holeMs} ms: fallback after ${fallbackAfter} ms, primary again ${recoveredAfter} ms after the network healed (bound ${RECOVERY_BOUND_MS} ms)`,
      );
      await sleep(1_000);
      await traffic.stop();

      const terminated = await sigterm(serve);
      expect(terminated.code).toBe(0);
      expect(terminated.ms).toBeLessThan(SHUTDOWN_BOUND_MS);

      // Every acknowledged turn is in Postgres, read directly (not through the proxy).
      const reader = PostgresCheckpointer.fromConnString(TEST_DATABASE_URL, { schema });
      try {
        let turns = 0;
        for (const [id, texts] of traffic.acked) {
          const tuple = await reader.getTuple({ configurable: { thread_id: id } });
          const messages = (tuple?.checkpoint.channel_values.messages ?? []) as BaseMessage[];
          const stored = new Set(messages.map((m) => m.text));
          const missing = texts.filter((t) => !stored.has(t));
          expect({ id, missing }).toEqual({ id, missing: [] });
          turns += texts.length;
        }
        expect(turns).toBeGreaterThan(traffic.acked.size * 2);
      } finally {
        await reader.end();
      }
    },
    60_000 + RECOVERY_BOUND_MS + SHUTDOWN_BOUND_MS + 90_000,
  );

  it.concurrent(
    "completes SIGTERM during a black hole within the shutdown bound and reports the pending entries",
    async () => {
      const { serve, proxy } = await start("bh_term");
      const traffic = load(serve.url, 2);
      await sleep(2_000);
      proxy.blackHole();
      await waitForMode(serve.url, "fallback", 60_000);
      // Turns acknowledged into memory only.
      const before = (await health(serve.url)).pending;
      await sleep(2_000);
      expect((await health(serve.url)).pending).toBeGreaterThan(before);

      const stopping = traffic.stop();
      const terminated = await sigterm(serve);
      await stopping;
      expect(terminated.code).not.toBeNull();
      expect(terminated.ms).toBeLessThan(SHUTDOWN_BOUND_MS);
      const lost = serve
        .logs()
        .split("\n")
        .filter((l) => l.includes("they are lost with this process"));
      expect(lost.length).toBeGreaterThan(0);
      expect((JSON.parse(lost[0]!) as { pending: number }).pending).toBeGreaterThan(0);
    },
    60_000 + SHUTDOWN_BOUND_MS + 90_000,
  );
});

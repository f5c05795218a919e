import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FallbackCheckpointer } from "../../../../src/checkpoint/fallback/index.js";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/saver.js";
import { isThreadlineError } from "../../../../src/errors.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../../helpers/db.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { saverBehind, waitFor } from "./setup.js";

const admin = testPool(2);
const schema = uniqueSchema("tl_fb_limits");
const opened: Array<{ pool: pg.Pool; fallback: FallbackCheckpointer; proxy: TcpProxy }> = [];

beforeAll(async () => {
  await requirePostgres();
  await new PostgresCheckpointer(admin, { schema }).setup();
});
afterAll(async () => {
  for (const { fallback, pool, proxy } of opened) {
    await fallback.close();
    await pool.end();
    await proxy.close();
  }
  await dropSchema(admin, schema);
  await admin.end();
});

const meta = { source: "loop" as const, step: 0, parents: {} };

function checkpoint(text: string) {
  const cp = emptyCheckpoint();
  cp.id = uuid6(-1);
  cp.channel_values = { messages: [text] };
  cp.channel_versions = { messages: 1 };
  return cp;
}

async function open(options: Parameters<typeof saverBehind>[2]) {
  const proxy = await TcpProxy.start();
  const { pool, fallback } = saverBehind(proxy, schema, options);
  opened.push({ pool, fallback, proxy });
  return { proxy, fallback };
}

async function countCheckpoints(thread: string): Promise<number> {
  const { rows } = await admin.query<{ n: string }>(
    `SELECT count(*) AS n FROM "${schema}".checkpoints WHERE thread_id = $1`,
    [thread],
  );
  return Number(rows[0]!.n);
}

describe("FallbackCheckpointer limits", () => {
  it("with fallback.enabled false, an outage fails every call with DB_UNAVAILABLE and holds nothing in memory", async () => {
    const { proxy, fallback } = await open({ enabled: false });
    await fallback.start();
    const first = checkpoint("before");
    const cfg = await fallback.put({ configurable: { thread_id: "closed" } }, first, meta, {
      messages: 1,
    });

    await proxy.cut("refuse");
    const cp = checkpoint("during");
    const errors = await Promise.all(
      [
        fallback.put(cfg, cp, meta, { messages: 2 }),
        fallback.putWrites(cfg, [["messages", "x"]], "task"),
        fallback.getTuple({ configurable: { thread_id: "closed" } }),
        fallback.deleteThread("closed"),
      ].map((call: Promise<unknown>) =>
        call.then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    for (const err of errors) expect(isThreadlineError(err, "DB_UNAVAILABLE")).toBe(true);
    await expect(fallback.start()).rejects.toMatchObject({ code: "DB_UNAVAILABLE" });
    expect(fallback.status()).toMatchObject({
      mode: "primary",
      pending: 0,
      pendingBytes: 0,
      cachedBytes: 0,
    });

    await proxy.restore();
    // Nothing was written silently: only the checkpoint acknowledged before the outage exists.
    expect(await countCheckpoints("closed")).toBe(1);
  });

  it("when maxPendingEntries is reached new writes fail with FALLBACK_FULL and every acknowledged entry is replayed", async () => {
    const { proxy, fallback } = await open({ maxPendingEntries: 6 });
    await proxy.cut("refuse");
    await fallback.start();
    expect(fallback.status().mode).toBe("fallback");

    const acked: string[] = [];
    let parent: string | undefined;
    let refused: unknown;
    for (let i = 0; i < 10; i++) {
      const cp = checkpoint(`m${i}`);
      try {
        const cfg = await fallback.put(
          { configurable: { thread_id: "full", ...(parent ? { checkpoint_id: parent } : {}) } },
          cp,
          meta,
          { messages: i + 1 },
        );
        await fallback.putWrites(cfg, [["messages", `w${i}`]], "task");
        acked.push(cp.id);
        parent = cp.id;
      } catch (err) {
        refused = err;
        break;
      }
    }
    expect(isThreadlineError(refused, "FALLBACK_FULL")).toBe(true);
    expect((refused as Error).message).toMatch(/maxPendingEntries/);
    expect(acked).toHaveLength(3); // 3 x (1 checkpoint + 1 write) = 6 entries
    expect(fallback.status().pending).toBe(6);
    // Everything acknowledged is still readable from memory.
    const latest = await fallback.getTuple({ configurable: { thread_id: "full" } });
    expect(latest?.checkpoint.id).toBe(acked.at(-1));
    expect(latest?.pendingWrites).toEqual([["task", "messages", "w2"]]);

    await proxy.restore();
    await waitFor(() => fallback.status().mode === "primary", 15_000, "recovery");
    expect(await countCheckpoints("full")).toBe(3);
    // With room again, writes are accepted.
    await fallback.put(
      { configurable: { thread_id: "full", checkpoint_id: parent } },
      checkpoint("after"),
      meta,
      {},
    );
    expect(await countCheckpoints("full")).toBe(4);
  });

  it("maxPendingBytes refuses a write that would not fit, without evicting anything", async () => {
    const { proxy, fallback } = await open({ maxPendingBytes: 4_096 });
    await proxy.cut("reset");
    await fallback.start();
    const small = checkpoint("small");
    await fallback.put({ configurable: { thread_id: "bytes" } }, small, meta, { messages: 1 });
    const big = checkpoint("x".repeat(10_000));
    await expect(
      fallback.put({ configurable: { thread_id: "bytes" } }, big, meta, { messages: 1 }),
    ).rejects.toMatchObject({
      code: "FALLBACK_FULL",
    });
    expect(fallback.status().pending).toBe(1);
    expect((await fallback.getTuple({ configurable: { thread_id: "bytes" } }))?.checkpoint.id).toBe(
      small.id,
    );
    await proxy.restore();
    await waitFor(() => fallback.status().mode === "primary", 15_000, "recovery");
    expect(await countCheckpoints("bytes")).toBe(1);
  });
});

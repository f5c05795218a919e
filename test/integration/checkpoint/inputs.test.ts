import type { RunnableConfig } from "@langchain/core/runnables";
import {
  emptyCheckpoint,
  uuid6,
  type BaseCheckpointSaver,
  type CheckpointListOptions,
} from "@langchain/langgraph-checkpoint";
import { FallbackCheckpointer } from "../../../src/checkpoint/fallback/index.js";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { isThreadlineError } from "../../../src/errors.js";
import { TEST_DATABASE_URL, installedSchema } from "../../helpers/db.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { saverBehind, waitFor } from "./fallback/setup.js";

const { admin, schema } = installedSchema("tl_inputs");

const meta = { source: "loop" as const, step: 0, parents: {} };

function checkpoint(values: Record<string, unknown> = {}) {
  const cp = emptyCheckpoint();
  cp.id = uuid6(-1);
  cp.channel_values = values;
  cp.channel_versions = Object.fromEntries(Object.keys(values).map((k) => [k, 1]));
  return cp;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return isThreadlineError(err) ? err.code : `not a ThreadlineError: ${String(err)}`;
  }
  return undefined;
}

async function drain(
  saver: BaseCheckpointSaver,
  config: RunnableConfig,
  opts: CheckpointListOptions,
) {
  const out = [];
  for await (const t of saver.list(config, opts)) out.push(t);
  return out;
}

function deep(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 0; i < depth; i++) node = node.a = {} as Record<string, unknown>;
  return root;
}

/** The same bad inputs, against the Postgres saver and the fallback saver in both modes. */
const savers: Array<
  [string, () => Promise<{ saver: BaseCheckpointSaver; close: () => Promise<void> }>]
> = [
  [
    "PostgresCheckpointer",
    () => {
      const saver = new PostgresCheckpointer(admin, { schema });
      return Promise.resolve({ saver, close: () => Promise.resolve() });
    },
  ],
  [
    "FallbackCheckpointer (primary mode)",
    async () => {
      const saver = new FallbackCheckpointer(new PostgresCheckpointer(admin, { schema }));
      await saver.start();
      return { saver, close: () => saver.close() };
    },
  ],
  [
    "FallbackCheckpointer (fallback mode)",
    async () => {
      const proxy = await TcpProxy.start();
      const { fallback, pool } = saverBehind(proxy, schema, { probeIntervalMs: 60_000 });
      await proxy.cut("refuse");
      await fallback.start();
      await waitFor(() => fallback.mode === "fallback", 15_000, "fallback mode");
      return {
        saver: fallback,
        close: async () => {
          await fallback.close();
          await pool.end().catch(() => undefined);
          await proxy.close();
        },
      };
    },
  ],
];

describe.each(savers)("bad inputs: %s", (_name, make) => {
  let saver: BaseCheckpointSaver;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ saver, close } = await make());
  });
  afterAll(async () => close());

  it("keeps a\\ud800b, a\\udc00b and a\\ufffdb apart: lone surrogates are INVALID_INPUT, nothing stored", async () => {
    const tag = uuid6(-1).slice(0, 8);
    for (const id of [`${tag}a\ud800b`, `${tag}a\udc00b`]) {
      expect(
        await codeOf(
          saver.put({ configurable: { thread_id: id, checkpoint_ns: "" } }, checkpoint(), meta, {}),
        ),
      ).toBe("INVALID_INPUT");
      expect(await codeOf(saver.getTuple({ configurable: { thread_id: id } }))).toBe(
        "INVALID_INPUT",
      );
    }
    const ok = `${tag}a\ufffdb`;
    await saver.put({ configurable: { thread_id: ok, checkpoint_ns: "" } }, checkpoint(), meta, {});
    expect(await saver.getTuple({ configurable: { thread_id: ok } })).toBeDefined();
    expect(
      await codeOf(
        saver.put(
          { configurable: { thread_id: "t", checkpoint_ns: "ns\udc00" } },
          checkpoint(),
          meta,
          {},
        ),
      ),
    ).toBe("INVALID_INPUT");
  });

  it("answers ids over the byte limits with INVALID_INPUT, not DB_ERROR", async () => {
    const long = "x".repeat(3_000_000);
    expect(
      await codeOf(
        saver.put({ configurable: { thread_id: long, checkpoint_ns: "" } }, checkpoint(), meta, {}),
      ),
    ).toBe("INVALID_INPUT");
    expect(await codeOf(saver.getTuple({ configurable: { thread_id: "x".repeat(513) } }))).toBe(
      "INVALID_INPUT",
    );
    expect(
      await codeOf(
        saver.put(
          { configurable: { thread_id: "t-ns", checkpoint_ns: "n".repeat(1025) } },
          checkpoint(),
          meta,
          {},
        ),
      ),
    ).toBe("INVALID_INPUT");
    const cp = checkpoint();
    cp.id = "c".repeat(600);
    expect(await codeOf(saver.put({ configurable: { thread_id: "t-id" } }, cp, meta, {}))).toBe(
      "INVALID_INPUT",
    );
    // The longest accepted thread id works end to end.
    const longest = `${uuid6(-1)}`.padEnd(512, "y");
    await saver.put(
      { configurable: { thread_id: longest, checkpoint_ns: "" } },
      checkpoint(),
      meta,
      {},
    );
    expect(await saver.getTuple({ configurable: { thread_id: longest } })).toBeDefined();
  });

  it("answers a list limit of 1e20 or a non-safe integer with INVALID_INPUT", async () => {
    for (const limit of [1e20, Number.MAX_SAFE_INTEGER + 2, Number.NaN]) {
      expect(await codeOf(drain(saver, { configurable: { thread_id: "t" } }, { limit }))).toBe(
        "INVALID_INPUT",
      );
    }
    expect(await drain(saver, { configurable: { thread_id: "none" } }, { limit: 5 })).toEqual([]);
  });

  it("answers a deep or BigInt list filter with INVALID_INPUT", async () => {
    for (const filter of [deep(33), deep(5000), { step: 1n }, { f: () => 1 }] as Array<
      Record<string, unknown>
    >) {
      expect(await codeOf(drain(saver, { configurable: { thread_id: "t" } }, { filter }))).toBe(
        "INVALID_INPUT",
      );
    }
    expect(
      await drain(saver, { configurable: { thread_id: "none" } }, { filter: deep(32) }),
    ).toEqual([]);
  });

  it("refuses function and Symbol values in channel values, writes and metadata at put time", async () => {
    const threadId = `fn-${uuid6(-1)}`;
    const config = { configurable: { thread_id: threadId, checkpoint_ns: "" } };
    const bad: Array<Record<string, unknown>> = [
      { x: () => 1 },
      { x: [{ content: "a" }, { content: Symbol("s") }] },
      { x: { n: 10n } },
    ];
    for (const values of bad) {
      expect(await codeOf(saver.put(config, checkpoint(values), meta, { x: 1 }))).toBe(
        "INVALID_INPUT",
      );
    }
    expect(
      await codeOf(saver.put(config, checkpoint(), { ...meta, hook: () => 1 } as never, {})),
    ).toBe("INVALID_INPUT");
    expect(await saver.getTuple(config)).toBeUndefined();
    const stored = await saver.put(config, checkpoint({ x: [1] }), meta, { x: 1 });
    expect(await codeOf(saver.putWrites(stored, [["x", () => 1]], "task"))).toBe("INVALID_INPUT");
    expect(await codeOf(saver.putWrites(stored, [["x", Symbol("s")]], "task"))).toBe(
      "INVALID_INPUT",
    );
    const tuple = await saver.getTuple(config);
    expect(tuple?.checkpoint.channel_values).toEqual({ x: [1] });
    expect(tuple?.pendingWrites).toEqual([]);
  });
});

describe("PostgresCheckpointer.fromConnString", () => {
  it("returns an instance of the subclass it is called on", async () => {
    class AuditedSaver extends PostgresCheckpointer {
      readonly audited = true;
    }
    const saver = AuditedSaver.fromConnString(TEST_DATABASE_URL, { schema });
    try {
      expect(saver).toBeInstanceOf(AuditedSaver);
      expect(saver.audited).toBe(true);
      expect(await saver.getTuple({ configurable: { thread_id: "none" } })).toBeUndefined();
    } finally {
      await saver.end();
    }
    // end() closed the pool it created.
    expect(saver.pool.ending).toBe(true);
  });
});

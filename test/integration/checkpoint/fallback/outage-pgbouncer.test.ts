import type { BaseMessage } from "@langchain/core/messages";
import { PostgresCheckpointer } from "../../../../src/checkpoint/postgres/index.js";
import type { FallbackCheckpointer } from "../../../../src/checkpoint/fallback/index.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../../helpers/db.js";
import { chatGraph, chatTurn } from "../../../helpers/graph.js";
import { pgbouncerUrl } from "../../../helpers/pgbouncer.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { saverBehind, sleep, waitFor } from "./setup.js";

// The fallback through PgBouncer in transaction mode: the network between the service and the
// pooler is cut (the proxy sits in front of PgBouncer), then restored.
const admin = testPool(2);
const schema = uniqueSchema("tl_fb_bouncer");
let proxy: TcpProxy | undefined;
let fallback: FallbackCheckpointer | undefined;
let close: (() => Promise<void>) | undefined;

beforeAll(requirePostgres);
afterAll(async () => {
  await fallback?.close();
  await close?.();
  await proxy?.close();
  await dropSchema(admin, schema);
  await admin.end();
});

describe("FallbackCheckpointer through PgBouncer", () => {
  it("a chat goes on while the pooler is unreachable, and every turn is in Postgres after it returns", async () => {
    const url = new URL(pgbouncerUrl());
    proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port) });
    const opened = saverBehind(proxy, schema, {}, "tl_fb_bouncer", {
      url: url.toString(),
      preparedStatements: false,
    });
    fallback = opened.fallback;
    close = () => opened.pool.end();
    await fallback.start();
    expect(fallback.status().mode).toBe("primary");
    const graph = chatGraph(fallback);
    const thread = "bouncer-outage";
    const expectTurns = (messages: BaseMessage[], turns: number) => {
      expect(messages).toHaveLength(turns * 2);
      for (let i = 1; i <= turns; i++) expect(messages[2 * (i - 1)]!.content).toBe(`user ${i}`);
    };
    let turn = 0;
    const say = async () => expectTurns(await chatTurn(graph, thread, `user ${++turn}`), turn);

    for (let i = 0; i < 3; i++) await say();
    await proxy.cut("reset");
    for (let i = 0; i < 3; i++) {
      await say();
      expect(fallback.status().mode).toBe("fallback");
      await sleep(300);
    }
    expect(fallback.status().pending).toBeGreaterThan(0);
    await proxy.restore();
    await waitFor(() => fallback!.status().mode === "primary", 60_000, "recovery");
    expect(fallback.status()).toMatchObject({ pending: 0, failed: 0 });
    await say();

    const fresh = new PostgresCheckpointer(admin, { schema });
    const latest = await fresh.getTuple({ configurable: { thread_id: thread } });
    expectTurns(latest!.checkpoint.channel_values.messages as BaseMessage[], turn);
  }, 120_000);
});

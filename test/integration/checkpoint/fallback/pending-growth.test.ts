import type { BaseMessage } from "@langchain/core/messages";
import { afterAll, describe, expect, it } from "vitest";
import { installedSchema } from "../../../helpers/db.js";
import { chatGraph, chatTurn } from "../../../helpers/graph.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { saverBehind, waitFor } from "./setup.js";

const { admin, schema } = installedSchema("tl_fb_growth");
const proxies: TcpProxy[] = [];
afterAll(async () => {
  for (const p of proxies) await p.close();
});

async function fullMessageRows(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM "${schema}".checkpoint_blobs
      WHERE channel = 'messages' AND delta_base IS NULL`,
  );
  return rows[0]!.n;
}

describe("pending entries during an outage", () => {
  it("grow with what was said, not with the square of thread length, and replay as deltas", async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const { pool, fallback } = saverBehind(proxy, schema);
    try {
      await fallback.start();
      const graph = chatGraph(fallback);
      const turns = [0, 0];
      const turn = async (i: number) => {
        turns[i]! += 1;
        const messages: BaseMessage[] = await chatTurn(graph, `grow-${i}`, `user ${turns[i]}`);
        expect(messages).toHaveLength(turns[i]! * 2);
      };
      for (let k = 0; k < 10; k++) for (const i of [0, 1]) await turn(i);
      const fullBefore = await fullMessageRows();

      await proxy.cut("refuse");
      for (let k = 0; k < 10; k++) for (const i of [0, 1]) await turn(i);
      const down = fallback.status();
      expect(down.mode).toBe("fallback");
      // 20 messages per thread before the outage: a put serializing them whole costs > 10 KB.
      expect(down.pendingBytes / 20).toBeLessThan(8 * 1024);

      await proxy.restore();
      await waitFor(() => fallback.status().mode === "primary", 60_000, "recovery");
      expect(fallback.status()).toMatchObject({ pending: 0, failed: 0 });
      // The replayed checkpoints extend what Postgres held: deltas, no new full message lists.
      expect(await fullMessageRows()).toBe(fullBefore);
      for (const i of [0, 1]) await turn(i);
    } finally {
      await fallback.close();
      await pool.end().catch(() => undefined);
    }
  }, 120_000);
});

import { HumanMessage } from "@langchain/core/messages";
import pg from "pg";
import { PostgresCheckpointer } from "../src/checkpoint/index.js";
import { attachPoolErrorHandler } from "../src/db/pool.js";
import { sideBySide, type SideBySide } from "./instances.js";
import { chatGraph, time } from "./turn.js";
import { messageText } from "./payload.js";
import { median, percentile } from "./stats.js";

/** Result of {@link benchPrepared}. */
export interface PreparedBenchResult {
  /** Chat turns (graph invoke) with named prepared statements and with unnamed ones. */
  chatTurn: SideBySide;
  /** getTuple of the latest checkpoint of a 20-turn thread: p50 ms per side, unnamed/named. */
  getTuple: { named: number; unnamed: number; ratio: number };
}

/**
 * What `preparedStatements: false` (the setting behind a transaction-mode pooler) costs: two
 * PostgresCheckpointers on the same schema, each with its own pool, one with named prepared
 * statements (parsed and planned once per connection) and one with unnamed ones (parsed and
 * planned on every call), interleaved in rounds.
 */
export async function benchPrepared(opts: {
  url: string;
  quick: boolean;
}): Promise<PreparedBenchResult> {
  const schema = `bench_prep_${Math.random().toString(36).slice(2, 8)}`;
  const pools = Array.from({ length: 2 }, () =>
    attachPoolErrorHandler(new pg.Pool({ connectionString: opts.url, max: 4 })),
  );
  try {
    const named = new PostgresCheckpointer(pools[0]!, { schema, preparedStatements: true });
    const unnamed = new PostgresCheckpointer(pools[1]!, { schema, preparedStatements: false });
    await named.setup();
    const graphs = { named: chatGraph(named), unnamed: chatGraph(unnamed) };
    const input = (turn: number) => ({
      messages: [new HumanMessage(messageText(turn, "user"))],
    });
    const cfg = (threadId: string) => ({ configurable: { thread_id: threadId } });
    const chatTurn = await sideBySide(
      {
        named: (t, turn) => graphs.named.invoke(input(turn), cfg(`named-${t}`)),
        unnamed: (t, turn) => graphs.unnamed.invoke(input(turn), cfg(`unnamed-${t}`)),
      },
      opts.quick ? 1 : 10,
      "",
      [["unnamed", "named"]],
    );
    // Reads by fresh checkpointers (no delta cache) so every call reads the whole thread.
    const readers = {
      named: new PostgresCheckpointer(pools[0]!, { schema, deltaCacheSize: 0 }),
      unnamed: new PostgresCheckpointer(pools[1]!, {
        schema,
        deltaCacheSize: 0,
        preparedStatements: false,
      }),
    };
    const ms = { named: [] as number[], unnamed: [] as number[] };
    for (let r = 0; r < (opts.quick ? 20 : 200); r++) {
      for (const side of r % 2 === 0
        ? (["named", "unnamed"] as const)
        : (["unnamed", "named"] as const)) {
        ms[side].push(await time(() => readers[side].getTuple(cfg(`${side}-0`))));
      }
    }
    return {
      chatTurn,
      getTuple: {
        named: percentile(ms.named, 50),
        unnamed: percentile(ms.unnamed, 50),
        ratio: median(ms.unnamed.map((x, i) => x / Math.max(1e-6, ms.named[i]!))),
      },
    };
  } finally {
    await pools[0]!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await Promise.all(pools.map((p) => p.end()));
  }
}

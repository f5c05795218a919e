import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { RunnableConfig } from "@langchain/core/runnables";
import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { MessagesAnnotation, StateGraph } from "@langchain/langgraph";
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointMetadata,
} from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { isThreadlineError } from "../../../src/errors.js";
import { TEST_DATABASE_URL, installedSchema } from "../../helpers/db.js";
import { chatGraph, chatTurn } from "../../helpers/graph.js";
import { runChild, taggedLines } from "../../helpers/child-process.js";

/**
 * Issue 11, items 1 and 2: writers in different processes on one thread. Every fault here is an
 * interleaving forced by the test (a sweep inside a turn, two processes forking from the same
 * checkpoint), so the outcome is counted, never timed.
 */
const { admin, schema } = installedSchema("tl_xproc");
const FORK_WRITER = fileURLToPath(
  new URL("../../fixtures/processes/fork-writer.ts", import.meta.url),
);

type MessageKey = [type: string, id: string | undefined, content: unknown];
const keyOf = (m: BaseMessage): MessageKey => [m.getType(), m.id, m.content];
const messagesOf = (values: Record<string, unknown> | undefined) =>
  ((values?.messages ?? []) as BaseMessage[]).map(keyOf);

/** Runs the TTL sweep with a TTL every thread has outlived: it deletes whatever it can lock. */
async function sweepAll(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT "${schema}".cleanup_expired_threads(interval '1 microsecond', 1000) AS n`,
  );
  return rows[0]!.n;
}

/** A checkpointer that runs `before` once, at the start of its next put. */
class HookedCheckpointer extends PostgresCheckpointer {
  before: (() => Promise<void>) | undefined;
  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const hook = this.before;
    this.before = undefined;
    if (hook) await hook();
    return super.put(config, checkpoint, metadata, newVersions);
  }
}

describe("a TTL sweep during a turn", () => {
  it("between a turn's read and its writes: the thread is never corrupt, the turn lands in a fresh thread (10 of 10)", async () => {
    const writer = new HookedCheckpointer(admin, { schema });
    const graph = new StateGraph(MessagesAnnotation)
      .addNode("model", async (state: typeof MessagesAnnotation.State) => {
        // Odd rounds: the sweep runs inside the step, after the input checkpoint was written.
        if (sweepInNode) swept += await sweepAll();
        return {
          messages: [
            new AIMessage({ id: randomUUID(), content: `reply ${state.messages.length}` }),
          ],
        };
      })
      .addEdge("__start__", "model")
      .addEdge("model", "__end__")
      .compile({ checkpointer: writer });
    let sweepInNode = false;
    let swept = 0;
    let corrupt = 0;
    for (let round = 0; round < 10; round++) {
      const threadId = `sweep-${round}-${randomUUID()}`;
      const config = { configurable: { thread_id: threadId } };
      // Two turns first: the writer now holds the thread's messages as a delta base.
      for (const text of ["one", "two"])
        await graph.invoke(
          { messages: [new HumanMessage({ id: randomUUID(), content: text })] },
          config,
        );
      sweepInNode = round % 2 === 1;
      // Even rounds: the sweep runs after the turn's getTuple, before its first write.
      if (!sweepInNode)
        writer.before = async () => {
          swept += await sweepAll();
        };
      const out = await graph.invoke(
        { messages: [new HumanMessage({ id: randomUUID(), content: "three" })] },
        config,
      );
      sweepInNode = false;

      // Another process's view: a checkpointer with an empty cache.
      const reader = new PostgresCheckpointer(admin, { schema });
      try {
        const latest = await reader.getTuple(config);
        // The turn's last checkpoint holds what the turn put: the whole conversation it saw.
        expect(messagesOf(latest?.checkpoint.channel_values)).toEqual(out.messages.map(keyOf));
        for await (const t of reader.list(config)) void t; // every remaining checkpoint reads
        // And the thread continues, from any process.
        const next = await chatTurn(chatGraph(reader), threadId, "four");
        expect(next.map(keyOf).slice(0, out.messages.length)).toEqual(out.messages.map(keyOf));
        const again = await graph.invoke(
          { messages: [new HumanMessage({ id: randomUUID(), content: "five" })] },
          config,
        );
        expect(again.messages).toHaveLength(next.length + 2);
      } catch (err) {
        if (isThreadlineError(err) && err.code === "DATA_CORRUPT") corrupt++;
        else throw err;
      }
    }
    expect(corrupt).toBe(0);
    // Each round's sweep did delete the thread (and only it: nothing else is left idle).
    expect(swept).toBeGreaterThanOrEqual(10);
  });

  it("a delta whose base row was deleted and written again during the turn is stored whole", async () => {
    const writer = new HookedCheckpointer(admin, { schema });
    const threadId = `rewrite-${randomUUID()}`;
    const graph = chatGraph(writer);
    await chatTurn(graph, threadId, "one");
    await chatTurn(graph, threadId, "two");
    const rowsOf = async () =>
      (
        await admin.query<{ version: string; delta_base: string | null }>(
          `SELECT b.version, b.delta_base FROM "${schema}".checkpoint_blobs b
            WHERE b.thread_id = $1 AND b.channel = 'messages' ORDER BY b.version::numeric`,
          [threadId],
        )
      ).rows;
    const before = await rowsOf();
    // After the turn's read: the same keys get new row versions (other xmins), as when the
    // thread is deleted and written again by another process.
    writer.before = async () => {
      await admin.query(
        `UPDATE "${schema}".checkpoint_blobs SET blob = blob WHERE thread_id = $1 AND channel = 'messages'`,
        [threadId],
      );
    };
    await chatTurn(graph, threadId, "three");
    const added = (await rowsOf()).slice(before.length);
    // The turn's first messages row is whole; the next one is a delta on it again.
    expect(added.map((r) => r.delta_base)).toEqual([null, added[0]!.version]);
    const reader = new PostgresCheckpointer(admin, { schema });
    const latest = await reader.getTuple({ configurable: { thread_id: threadId } });
    expect(messagesOf(latest?.checkpoint.channel_values)).toHaveLength(6);
  });
});

describe("two library processes writing the same threads", () => {
  it("every acknowledged checkpoint reads back by id, from a third process, with the messages it was put with; threads begun by the official saver continue", async () => {
    // The threads begin with the official saver: integer versions, official rows.
    const official = new PostgresSaver(admin, undefined, { schema });
    const officialGraph = chatGraph(official);
    const threads: Array<{ thread: string; fork: string }> = [];
    for (let i = 0; i < 6; i++) {
      const thread = `fork-${i}-${randomUUID()}`;
      await chatTurn(officialGraph, thread, "begun by the official saver");
      const latest = await official.getTuple({ configurable: { thread_id: thread } });
      threads.push({ thread, fork: latest!.checkpoint.id });
    }
    const baseMessages = new Map<string, MessageKey[]>();
    for (const { thread } of threads) {
      const t = await official.getTuple({ configurable: { thread_id: thread } });
      baseMessages.set(thread, messagesOf(t?.checkpoint.channel_values));
    }

    // Two processes at once, each forking every thread from the same official checkpoint in
    // even rounds (the same next versions, whatever the timing) and continuing the latest in
    // odd ones.
    const runs = await Promise.all(
      ["left", "right"].map((label) =>
        runChild(FORK_WRITER, [TEST_DATABASE_URL, schema, label, "4", JSON.stringify(threads)]),
      ),
    );
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const acks = runs.flatMap((r) =>
      taggedLines<{ thread: string; id: string; messages: MessageKey[] | null }>(r.stdout, "ACK"),
    );
    // 2 processes x 6 threads x 4 turns x 3 checkpoints (input, loop, model).
    expect(acks).toHaveLength(144);

    const reader = new PostgresCheckpointer(admin, { schema });
    let mismatched = 0;
    for (const ack of acks) {
      const t = await reader.getTuple({
        configurable: { thread_id: ack.thread, checkpoint_ns: "", checkpoint_id: ack.id },
      });
      expect(t, `checkpoint ${ack.id} of ${ack.thread}`).toBeDefined();
      const got = messagesOf(t?.checkpoint.channel_values);
      if (JSON.stringify(got) !== JSON.stringify(ack.messages ?? [])) mismatched++;
    }
    expect(mismatched).toBe(0);

    // Every fork starts with the official history, and the official saver still reads the
    // threads' official checkpoints.
    for (const { thread, fork } of threads) {
      const t = await reader.getTuple({ configurable: { thread_id: thread } });
      expect(messagesOf(t?.checkpoint.channel_values).slice(0, 2)).toEqual(
        baseMessages.get(thread),
      );
      const old = await official.getTuple({
        configurable: { thread_id: thread, checkpoint_ns: "", checkpoint_id: fork },
      });
      expect(messagesOf(old?.checkpoint.channel_values)).toEqual(baseMessages.get(thread));
    }
  }, 180_000); // ~20 s on a quiet machine: two child processes start tsx and LangGraph
});

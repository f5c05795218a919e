import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { AGENT_FILE, serveGraphs, type Served } from "./helpers.js";

/**
 * The real `@langchain/langgraph-sdk` Client against `threadline serve --graph agent=...` (a
 * child process on the test database): the test agent streams tokens, calls tools and
 * interrupts (test/fixtures/graphs/agent.ts).
 */

interface Msg {
  type: string;
  content: unknown;
  id?: string;
}
type Values = { messages: Msg[] };

const schema = uniqueSchema("tl_sdk");
const pool = testPool(2);
let served: Served;
let client: Client;

function lastText(values: Values): string {
  const last = values.messages.at(-1);
  return typeof last?.content === "string" ? last.content : "";
}

beforeAll(async () => {
  await requirePostgres();
  served = await serveGraphs(schema, ["--graph", `agent=${AGENT_FILE}:graph`]);
  client = new Client({ apiUrl: served.url, apiKey: null });
}, 120_000);

afterAll(async () => {
  await served?.stop();
  await dropSchema(pool, schema);
  await pool.end();
});

describe("Agent Server API through the SDK", () => {
  it("assistants.search lists the served graph and the built-in chat graph", async () => {
    const assistants = await client.assistants.search({ limit: 10 });
    expect(assistants.map((a) => a.graph_id).sort()).toEqual(["agent", "chat"]);
    const agent = assistants.find((a) => a.graph_id === "agent")!;
    // The graph name is accepted as the id, and the id is stable (UUIDv5 of the name).
    const byName = await client.assistants.get("agent");
    expect(byName.assistant_id).toBe(agent.assistant_id);
    expect(agent.assistant_id).toBe("fe096781-5601-53d2-b2f6-0d3403f7e9ca");
    const drawn = await client.assistants.getGraph(agent.assistant_id);
    expect(drawn.nodes.map((n) => n.id)).toEqual(
      expect.arrayContaining(["__start__", "agent", "tools", "__end__"]),
    );
    const schemas = await client.assistants.getSchemas("agent");
    expect(schemas.graph_id).toBe("agent");
  });

  it("threads: create, get, update, search, count, copy and delete", async () => {
    const tag = `t-${Date.now()}`;
    const created = await client.threads.create({ metadata: { tag, user: "frank" } });
    expect(created.status).toBe("idle");
    expect(created.metadata).toMatchObject({ tag, user: "frank" });

    const same = await client.threads.create({
      threadId: created.thread_id,
      ifExists: "do_nothing",
    });
    expect(same.thread_id).toBe(created.thread_id);
    await expect(client.threads.create({ threadId: created.thread_id })).rejects.toThrow(/409/);

    const got = await client.threads.get(created.thread_id);
    expect(got.thread_id).toBe(created.thread_id);

    const updated = await client.threads.update(created.thread_id, { metadata: { stage: "two" } });
    expect(updated.metadata).toMatchObject({ tag, user: "frank", stage: "two" });

    await client.threads.create({ metadata: { tag, user: "ann" } });
    const found = await client.threads.search({ metadata: { tag }, limit: 10 });
    expect(found).toHaveLength(2);
    expect(await client.threads.count({ metadata: { tag } })).toBe(2);
    expect(await client.threads.count({ metadata: { tag, user: "ann" } })).toBe(1);

    await client.runs.wait(created.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "My name is Frank" }] },
    });
    const copy = await client.threads.copy(created.thread_id);
    expect(copy.thread_id).not.toBe(created.thread_id);
    const copiedState = await client.threads.getState<Values>(copy.thread_id);
    expect(copiedState.values.messages.map((m) => m.content)).toEqual(
      (await client.threads.getState<Values>(created.thread_id)).values.messages.map(
        (m) => m.content,
      ),
    );
    // The copy has its own memory: a turn on it does not reach the original.
    await client.runs.wait(copy.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "What is my name?" }] },
    });
    expect((await client.threads.getState<Values>(created.thread_id)).values.messages).toHaveLength(
      2,
    );

    await client.threads.delete(created.thread_id);
    await expect(client.threads.get(created.thread_id)).rejects.toThrow(/404/);
    const { rows } = await pool.query(
      `SELECT (SELECT count(*) FROM "${schema}".checkpoints WHERE thread_id = $1)::int AS c,
              (SELECT count(*) FROM "${schema}".agent_runs WHERE thread_id = $1)::int AS r`,
      [created.thread_id],
    );
    expect(rows[0]).toEqual({ c: 0, r: 0 });
  });

  it("runs.stream sends values, updates and messages-tuple, with tokens as they are produced", async () => {
    const thread = await client.threads.create();
    let runId: string | undefined;
    const events: { event: string; at: number; data: unknown }[] = [];
    for await (const chunk of client.runs.stream(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "hello streaming world of many tokens" }] },
      streamMode: ["values", "updates", "messages-tuple"],
      onRunCreated: (meta) => (runId = meta.run_id),
    })) {
      events.push({ event: chunk.event, at: Date.now(), data: chunk.data });
    }
    const names = new Set(events.map((e) => e.event));
    expect(names).toEqual(new Set(["metadata", "values", "updates", "messages"]));
    expect(runId).toBeDefined();
    expect((events[0]!.data as { run_id: string }).run_id).toBe(runId);

    const tokens = events.filter((e) => e.event === "messages");
    const text = tokens.map((e) => (e.data as [{ content: string }, unknown])[0].content).join("");
    expect(text).toBe("Hello there, you said: hello streaming world of many tokens");
    expect(tokens.length).toBeGreaterThan(5);
    // The model pauses 40 ms per token: chunks delivered as produced spread over that time,
    // a buffered reply would arrive all at once.
    expect(tokens.at(-1)!.at - tokens[0]!.at).toBeGreaterThanOrEqual(150);
    const lastValues = events.filter((e) => e.event === "values").at(-1)!.data as Values;
    expect(lastText(lastValues)).toBe(text);
    const updates = events
      .filter((e) => e.event === "updates")
      .map((e) => Object.keys(e.data as object));
    expect(updates).toContainEqual(["agent"]);
  });

  it("runs.wait remembers the thread: My name is Frank, then What is my name?", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "My name is Frank" }] },
    });
    const answer = (await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "What is my name?" }] },
    })) as Values;
    expect(lastText(answer)).toBe("Your name is Frank.");
    expect(answer.messages).toHaveLength(4);
  });

  it("a tool call runs through the tool node", async () => {
    const result = (await client.runs.wait(null, "agent", {
      input: { messages: [{ role: "user", content: "what is the weather in Paris" }] },
    })) as Values;
    expect(result.messages.map((m) => m.type)).toEqual(["human", "ai", "tool", "ai"]);
    expect(lastText(result)).toBe("Done: It is sunny in Paris.");
  });

  it("an interrupt leaves the thread interrupted with its question; command resume completes it", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "please send the report" }] },
    });
    expect((await client.threads.get(thread.thread_id)).status).toBe("interrupted");
    const state = await client.threads.getState<Values>(thread.thread_id);
    expect(state.next).toEqual(["tools"]);
    expect(state.tasks[0]!.interrupts[0]!.value).toEqual({
      question: "Send the email to frank@example.com?",
      to: "frank@example.com",
    });

    const chunks: string[] = [];
    for await (const chunk of client.runs.stream(thread.thread_id, "agent", {
      command: { resume: "yes" },
      streamMode: "values",
    })) {
      chunks.push(chunk.event);
    }
    expect(chunks).toContain("values");
    const after = await client.threads.get<Values>(thread.thread_id);
    expect(after.status).toBe("idle");
    expect(lastText(after.values)).toBe("Done: email sent to frank@example.com");
  });

  it("reads older checkpoints, lists history newest first, updates state and forks", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "My name is Frank" }] },
    });
    await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "second turn" }] },
    });

    const history = await client.threads.getHistory<Values>(thread.thread_id, { limit: 20 });
    const steps = history.map((h) => h.metadata?.step as number);
    expect(steps).toEqual([...steps].sort((a, b) => b - a));
    expect(history[0]!.values.messages).toHaveLength(4);

    // The checkpoint after the first turn: two messages.
    const older = history.find((h) => h.values.messages?.length === 2 && h.next.length === 0)!;
    const atOlder = await client.threads.getState<Values>(
      thread.thread_id,
      older.checkpoint.checkpoint_id!,
    );
    expect(atOlder.values.messages.map((m) => m.content)).toEqual([
      "My name is Frank",
      "Hello there, you said: My name is Frank",
    ]);
    const before = await client.threads.getHistory<Values>(thread.thread_id, {
      limit: 1,
      before: { configurable: { checkpoint_id: older.checkpoint.checkpoint_id } },
    });
    expect(before[0]!.checkpoint.checkpoint_id).toBe(older.parent_checkpoint!.checkpoint_id);

    // updateState appends a message as if the agent had said it.
    const updated = await client.threads.updateState(thread.thread_id, {
      values: { messages: [{ type: "ai", content: "a note from updateState" }] },
      asNode: "agent",
    });
    expect(updated.configurable?.checkpoint_id).toBeDefined();
    const now = await client.threads.getState<Values>(thread.thread_id);
    expect(lastText(now.values)).toBe("a note from updateState");
    expect(now.values.messages).toHaveLength(5);

    // A fork from the older checkpoint: a new branch whose chain of parents reaches that
    // checkpoint without passing through the second turn or the update.
    const mainBranch = new Set(history.map((h) => h.checkpoint.checkpoint_id));
    await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "What is my name?" }] },
      checkpointId: older.checkpoint.checkpoint_id!,
    });
    const all = await client.threads.getHistory<Values>(thread.thread_id, { limit: 50 });
    const byId = new Map(all.map((h) => [h.checkpoint.checkpoint_id, h]));
    const chain: string[] = [];
    for (let at = all[0]; at; at = byId.get(at.parent_checkpoint?.checkpoint_id ?? "")) {
      chain.push(at.checkpoint.checkpoint_id!);
      if (at.checkpoint.checkpoint_id === older.checkpoint.checkpoint_id) break;
    }
    expect(chain.at(-1)).toBe(older.checkpoint.checkpoint_id);
    expect(chain.slice(0, -1).some((id) => mainBranch.has(id))).toBe(false);
    expect(chain.length).toBeGreaterThan(1);
  });

  it("bad bodies are 422, unknown assistants, threads and checkpoints 404", async () => {
    const thread = await client.threads.create();
    const post = (path: string, body: string) =>
      fetch(`${served.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
    for (const [path, body] of [
      [`/threads/${thread.thread_id}/runs/wait`, JSON.stringify({ assistant_id: 5 })],
      [
        `/threads/${thread.thread_id}/runs/stream`,
        JSON.stringify({ assistant_id: "agent", stream_mode: "nope" }),
      ],
      [`/threads/${thread.thread_id}/runs/wait`, "{not json"],
      ["/threads", JSON.stringify({ metadata: "not an object" })],
      ["/threads/search", JSON.stringify({ limit: -1 })],
      ["/assistants/search", JSON.stringify({ limit: "ten" })],
    ] as const) {
      const res = await post(path, body);
      expect({ path, body, status: res.status }).toEqual({ path, body, status: 422 });
      expect(await res.json()).toHaveProperty("detail");
    }
    const unknown = [
      await post(
        `/threads/${thread.thread_id}/runs/wait`,
        JSON.stringify({ assistant_id: "nope" }),
      ),
      await post(`/threads/no-such-thread/runs/wait`, JSON.stringify({ assistant_id: "agent" })),
      await fetch(`${served.url}/threads/no-such-thread/state`),
      await fetch(
        `${served.url}/threads/${thread.thread_id}/state/1f000000-0000-6000-8000-000000000000`,
      ),
      await fetch(`${served.url}/assistants/00000000-0000-0000-0000-000000000000`),
      await fetch(`${served.url}/threads/no-such-thread`, { method: "DELETE" }),
    ];
    expect(unknown.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 404]);
    await expect(client.assistants.get("nope")).rejects.toThrow(/404/);
  });

  it("stateless runs.stream and runs.wait leave no thread behind", async () => {
    const before = await client.threads.count();
    const events: string[] = [];
    for await (const chunk of client.runs.stream(null, "agent", {
      input: { messages: [{ role: "user", content: "hi" }] },
      streamMode: ["updates"],
    })) {
      events.push(chunk.event);
    }
    expect(events).toEqual(["metadata", "updates"]);
    const waited = (await client.runs.wait(null, "agent", {
      input: { messages: [{ role: "user", content: "hi" }] },
    })) as Values;
    expect(lastText(waited)).toBe("Hello there, you said: hi");
    expect(await client.threads.count()).toBe(before);
  });

  it("the same thread reads back after a restart of the service", async () => {
    const thread = await client.threads.create({ metadata: { survives: true } });
    await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "My name is Frank" }] },
    });
    await served.stop();
    served = await serveGraphs(schema, ["--graph", `agent=${AGENT_FILE}:graph`]);
    client = new Client({ apiUrl: served.url, apiKey: null });
    const back = await client.threads.get<Values>(thread.thread_id);
    expect(back.metadata).toMatchObject({ survives: true });
    expect(back.values.messages).toHaveLength(2);
    const answer = (await client.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "What is my name?" }] },
    })) as Values;
    expect(lastText(answer)).toBe("Your name is Frank.");
  }, 120_000);
});

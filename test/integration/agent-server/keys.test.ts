import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quoteSchema } from "../../../src/db/identifier.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { AGENT_FILE, serveGraphs, type Served } from "./helpers.js";

/**
 * API keys on the Agent Server routes: the SDK's `x-api-key` and `Authorization: Bearer` name
 * the same caller, and each key sees only its own threads (another key's is 404 everywhere,
 * search and count leave it out), as on `/api/chat`.
 */

const KEY_A = "agent-key-a-0123456789abcdef";
const KEY_B = "agent-key-b-0123456789abcdef";
const schema = uniqueSchema("tl_agent_keys");
const pool = testPool(1);
let served: Served;
let alice: Client;
let bob: Client;

type Values = { messages: { content: unknown }[] };

beforeAll(async () => {
  await requirePostgres();
  served = await serveGraphs(schema, ["--graph", `agent=${AGENT_FILE}:graph`], {
    THREADLINE_API_KEYS: `${KEY_A},${KEY_B}`,
    AGENT_TOKEN_DELAY_MS: "0",
  });
  // The SDK sends its apiKey as `x-api-key`.
  alice = new Client({ apiUrl: served.url, apiKey: KEY_A });
  bob = new Client({ apiUrl: served.url, apiKey: KEY_B });
}, 120_000);

afterAll(async () => {
  await served?.stop();
  await dropSchema(pool, schema);
  await pool.end();
});

const call = (path: string, init: RequestInit & { key?: string; bearer?: string } = {}) => {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (init.key !== undefined) headers["x-api-key"] = init.key;
  if (init.bearer !== undefined) headers.authorization = `Bearer ${init.bearer}`;
  return fetch(`${served.url}${path}`, { ...init, headers });
};

describe("API keys on the Agent Server routes", () => {
  it("without a valid key the routes answer 401 (in the Agent Server's shape); /ok and /info stay open", async () => {
    for (const init of [{}, { key: "not-a-configured-key-000000" }, { bearer: "wrong" }]) {
      const res = await call("/threads/search", { method: "POST", body: "{}", ...init });
      expect(res.status).toBe(401);
      expect(await res.json()).toHaveProperty("detail");
      expect(
        (await call("/assistants/search", { method: "POST", body: "{}", ...init })).status,
      ).toBe(401);
    }
    await expect(new Client({ apiUrl: served.url, apiKey: null }).threads.count()).rejects.toThrow(
      /401/,
    );
    expect((await call("/ok")).status).toBe(200);
    expect((await call("/info")).status).toBe(200);
  });

  it("x-api-key and Authorization: Bearer are the same caller", async () => {
    const thread = await alice.threads.create({ metadata: { via: "x-api-key" } });
    const byBearer = await call(`/threads/${thread.thread_id}`, { bearer: KEY_A });
    expect(byBearer.status).toBe(200);
    expect(((await byBearer.json()) as { thread_id: string }).thread_id).toBe(thread.thread_id);
    const created = await call("/threads", {
      method: "POST",
      bearer: KEY_A,
      body: JSON.stringify({ metadata: { via: "bearer" } }),
    });
    const { thread_id } = (await created.json()) as { thread_id: string };
    expect((await alice.threads.get(thread_id)).metadata).toMatchObject({ via: "bearer" });
    expect((await call(`/threads/${thread_id}`, { bearer: KEY_B })).status).toBe(404);
  });

  it("another key's thread is 404 on get, patch, state, history, runs, copy and delete, and stays intact", async () => {
    const tag = `iso-${Date.now()}`;
    const mine = await alice.threads.create({ metadata: { tag } });
    await alice.runs.wait(mine.thread_id, "agent", {
      input: { messages: [{ role: "user", content: "My name is Frank" }] },
    });
    const state = await alice.threads.getState<Values>(mine.thread_id);
    const checkpointId = state.checkpoint.checkpoint_id!;
    const id = mine.thread_id;

    const attempts: Array<[string, () => Promise<unknown>]> = [
      ["get", () => bob.threads.get(id)],
      ["update", () => bob.threads.update(id, { metadata: { tag: "stolen" } })],
      ["getState", () => bob.threads.getState(id)],
      ["getState at a checkpoint", () => bob.threads.getState(id, checkpointId)],
      ["getHistory", () => bob.threads.getHistory(id)],
      [
        "updateState",
        () =>
          bob.threads.updateState(id, {
            values: { messages: [{ type: "ai", content: "injected" }] },
            asNode: "agent",
          }),
      ],
      [
        "runs.wait",
        () =>
          bob.runs.wait(id, "agent", {
            input: { messages: [{ role: "user", content: "What is my name?" }] },
          }),
      ],
      [
        "runs.wait with ifNotExists create",
        () =>
          bob.runs.wait(id, "agent", {
            input: { messages: [{ role: "user", content: "What is my name?" }] },
            ifNotExists: "create",
          }),
      ],
      [
        "runs.stream",
        async () => {
          for await (const chunk of bob.runs.stream(id, "agent", {
            input: { messages: [{ role: "user", content: "What is my name?" }] },
          }))
            void chunk;
        },
      ],
      ["copy", () => bob.threads.copy(id)],
      ["delete", () => bob.threads.delete(id)],
    ];
    const outcomes: Record<string, string> = {};
    for (const [name, attempt] of attempts) {
      outcomes[name] = await attempt().then(
        () => "succeeded",
        (err: unknown) => (/404/.test(String(err)) ? "404" : String(err)),
      );
    }
    expect(outcomes).toEqual(Object.fromEntries(attempts.map(([name]) => [name, "404"])));

    // A raw request with the other key as a Bearer token gets the same answer.
    expect((await call(`/threads/${id}/state`, { bearer: KEY_B })).status).toBe(404);
    expect(
      (await call(`/threads/${id}/history`, { method: "POST", bearer: KEY_B, body: "{}" })).status,
    ).toBe(404);

    // Nothing of the owner's thread changed.
    const after = await alice.threads.get<Values>(id);
    expect(after.metadata).toMatchObject({ tag });
    expect(after.values.messages.map((m) => m.content)).toEqual(
      state.values.messages.map((m) => m.content),
    );
    expect((await alice.threads.getHistory(id)).length).toBeGreaterThan(0);
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${quoteSchema(schema)}.agent_runs WHERE thread_id = $1`,
      [id],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it("search and count only see the caller's threads", async () => {
    const tag = `mine-${Date.now()}`;
    const a1 = await alice.threads.create({ metadata: { tag } });
    const a2 = await alice.threads.create({ metadata: { tag } });
    const b1 = await bob.threads.create({ metadata: { tag } });

    const aliceSees = (await alice.threads.search({ metadata: { tag }, limit: 100 })).map(
      (t) => t.thread_id,
    );
    expect(aliceSees.sort()).toEqual([a1.thread_id, a2.thread_id].sort());
    expect((await bob.threads.search({ metadata: { tag } })).map((t) => t.thread_id)).toEqual([
      b1.thread_id,
    ]);
    expect(await alice.threads.count({ metadata: { tag } })).toBe(2);
    expect(await bob.threads.count({ metadata: { tag } })).toBe(1);
    // Without a filter too: none of Alice's threads is in Bob's list or count.
    const bobAll = await bob.threads.search({ limit: 1000 });
    expect(bobAll.some((t) => [a1.thread_id, a2.thread_id].includes(t.thread_id))).toBe(false);
    expect(await bob.threads.count()).toBe(bobAll.length);
    // Searching by id does not reveal another key's thread either.
    expect(await bob.threads.search({ ids: [a1.thread_id] })).toEqual([]);

    // The owner deletes its own thread; the other key's stays.
    await alice.threads.delete(a1.thread_id);
    expect(await alice.threads.count({ metadata: { tag } })).toBe(1);
    expect((await bob.threads.get(b1.thread_id)).thread_id).toBe(b1.thread_id);
  });
});

import { randomUUID } from "node:crypto";
import type { UIMessage } from "ai";
import type { RunningService } from "../../src/service/composition-root.js";
import { aiChat, say, startTestService, testConfig, textOf } from "../integration/http/helpers.js";
import {
  citusPool,
  citusUrl,
  distributedSchema,
  dropCitusSchema,
  requireCitus,
} from "./helpers.js";

// The service (fallback + metrics + Postgres saver, API keys so thread_owners is used) on a
// distributed schema: chats remember their turns, another key gets 404, delete removes every row
// of the thread on the shards, and the TTL sweep and history prune run on distributed tables.
const pool = citusPool(4);
let schema: string;
let service: RunningService | undefined;
const KEY_A = "citus-key-a-0123456789";
const KEY_B = "citus-key-b-0123456789";

beforeAll(async () => {
  await requireCitus(pool);
  schema = await distributedSchema(pool, "tl_citus_chat");
  service = await startTestService(
    testConfig(schema, { database: { url: citusUrl() }, auth: { apiKeys: [KEY_A, KEY_B] } }),
  );
});

afterAll(async () => {
  await service?.shutdown("test");
  if (schema) await dropCitusSchema(pool, schema);
  await pool.end();
});

async function rowsOf(thread: string): Promise<Record<string, number>> {
  const tables = [
    "checkpoints",
    "checkpoint_blobs",
    "checkpoint_writes",
    "checkpoint_threads",
    "thread_owners",
  ];
  const out: Record<string, number> = {};
  for (const t of tables) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".${t} WHERE thread_id = $1`,
      [thread],
    );
    out[t] = rows[0]!.n;
  }
  return out;
}

describe("the service on Citus (tables distributed by thread_id)", () => {
  it("a chat remembers its turns, is private to its key, and is deleted from every table", async () => {
    const url = service!.url;
    const id = `citus-chat-${randomUUID()}`;
    const chat = aiChat(url, id, { headers: { authorization: `Bearer ${KEY_A}` } });
    expect(await say(chat, "first")).toContain("turn 1");
    expect(await say(chat, "second")).toContain("turn 2");
    expect(await say(chat, "third")).toContain("turn 3");

    const res = await fetch(`${url}/api/chat/${id}/messages`, { headers: { "x-api-key": KEY_A } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { messages: UIMessage[] };
    expect(body.messages.map(textOf).filter((_, i) => i % 2 === 0)).toEqual([
      "first",
      "second",
      "third",
    ]);
    expect(
      (await fetch(`${url}/api/chat/${id}/messages`, { headers: { "x-api-key": KEY_B } })).status,
    ).toBe(404);

    const before = await rowsOf(id);
    expect(before.checkpoints).toBeGreaterThan(0);
    expect(before.thread_owners).toBe(1);
    const del = await fetch(`${url}/api/chat/${id}`, {
      method: "DELETE",
      headers: { "x-api-key": KEY_A },
    });
    expect(del.status).toBe(204);
    expect(await rowsOf(id)).toEqual({
      checkpoints: 0,
      checkpoint_blobs: 0,
      checkpoint_writes: 0,
      checkpoint_threads: 0,
      thread_owners: 0,
    });
  });

  it("the TTL sweep and the history prune work on the distributed tables", async () => {
    const url = service!.url;
    const old = `citus-old-${randomUUID()}`;
    const live = `citus-live-${randomUUID()}`;
    for (const id of [old, live]) {
      const chat = aiChat(url, id, { headers: { "x-api-key": KEY_A } });
      await say(chat, "one");
      await say(chat, "two");
    }
    await pool.query(
      `UPDATE "${schema}".checkpoint_threads SET last_activity = now() - interval '30 days' WHERE thread_id = $1`,
      [old],
    );
    const { rows: swept } = await pool.query<{ threads_deleted: number }>(
      `SELECT threads_deleted FROM "${schema}".cleanup_expired_threads_detailed(interval '7 days', 100)`,
    );
    expect(swept[0]!.threads_deleted).toBe(1);
    expect((await rowsOf(old)).checkpoints).toBe(0);
    expect((await rowsOf(old)).thread_owners).toBe(0);

    const kept = (await rowsOf(live)).checkpoints ?? 0;
    expect(kept).toBeGreaterThan(2);
    const { rows: pruned } = await pool.query<{ checkpoints_deleted: string }>(
      `SELECT checkpoints_deleted FROM "${schema}".prune_thread_history(2, 1000)`,
    );
    expect(Number(pruned[0]!.checkpoints_deleted)).toBe(kept - 2);
    expect((await rowsOf(live)).checkpoints).toBe(2);
    // The thread still reads and continues after its history was cut.
    const chat = aiChat(url, live, { headers: { "x-api-key": KEY_A } });
    const loaded = (await (
      await fetch(`${url}/api/chat/${live}/messages`, { headers: { "x-api-key": KEY_A } })
    ).json()) as { messages: UIMessage[] };
    expect(loaded.messages).toHaveLength(4);
    chat.messages = loaded.messages;
    expect(await say(chat, "three")).toContain("turn 3");
  });
});

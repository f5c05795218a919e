import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { RunningService } from "../../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { chatBody, readSse, startTestService, testConfig } from "./helpers.js";

const KEY_A = "owner-key-a-0123456789";
const KEY_B = "owner-key-b-0123456789";
const TRIES = 160;

/**
 * Two service instances on one database, keys A and B. The race of issue 11 item 3: A deletes an
 * id while B claims it; A must never end up holding B's thread, and B must keep it.
 */
describe("thread ownership across two service instances", () => {
  const schema = uniqueSchema("http_own");
  let pool: pg.Pool;
  let one: RunningService;
  let two: RunningService;
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });

  const post = (service: RunningService, key: string, id: string, text: string) =>
    fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth(key) },
      body: chatBody(id, text),
    });
  const del = (service: RunningService, key: string, id: string) =>
    fetch(`${service.url}/api/chat/${id}`, { method: "DELETE", headers: auth(key) });
  const texts = async (service: RunningService, key: string, id: string) => {
    const res = await fetch(`${service.url}/api/chat/${id}/messages`, { headers: auth(key) });
    if (res.status === 404) return undefined;
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      messages: Array<{ parts: Array<{ text?: string }> }>;
    };
    return body.messages.flatMap((m) => m.parts.map((p) => p.text ?? "")).join("\n");
  };
  /** A POST's outcome: "ok" when the turn finished, else the status. */
  const turn = async (res: Response): Promise<"ok" | number> => {
    if (res.status !== 200) {
      await res.body?.cancel();
      return res.status;
    }
    const events = await readSse(res);
    return events.some((e) => e !== "[DONE]" && e.type === "finish") ? "ok" : 200;
  };

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
    const config = testConfig(schema, { auth: { apiKeys: [KEY_A, KEY_B] } });
    one = await startTestService(config);
    two = await startTestService(config);
  });
  afterAll(async () => {
    await one?.shutdown("test");
    await two?.shutdown("test");
    if (pool) {
      await dropSchema(pool, schema);
      await pool.end();
    }
  });

  it(`a DELETE by key A racing key B's first POST never gives A B's thread (${TRIES} tries)`, async () => {
    let breaches = 0;
    let lost = 0;
    let bWon = 0;
    for (let i = 0; i < TRIES; i++) {
      const id = `race-${i}-${randomUUID()}`;
      const secret = `secret-of-b-${i}`;
      // A deletes through instance one while B starts the thread through instance two.
      const [deleted, claimed] = await Promise.all([
        del(one, KEY_A, id),
        post(two, KEY_B, id, secret).then(turn),
      ]);
      expect(deleted.status).toBe(404);
      // Then A posts to the same id: it must get its own (new) thread or a 404, never B's.
      const mine = await turn(await post(one, KEY_A, id, `a-${i}`));
      const seenByA = await texts(one, KEY_A, id);
      if (seenByA?.includes(secret) || (mine === "ok" && claimed === "ok")) breaches += 1;
      if (claimed === "ok") {
        bWon += 1;
        const seenByB = await texts(two, KEY_B, id);
        if (!seenByB?.includes(secret)) lost += 1;
      }
    }
    expect({ breaches, lost }).toEqual({ breaches: 0, lost: 0 });
    // B's POST always starts the thread (A's DELETE of an id it does not own changes nothing).
    expect(bWon).toBe(TRIES);
  }, 300_000);

  it("answers a DELETE of another key's thread exactly like one of an unknown id (404)", async () => {
    const id = `b-owned-${randomUUID()}`;
    expect(await turn(await post(one, KEY_B, id, "b's words"))).toBe("ok");

    const unknown = await del(two, KEY_A, `never-${randomUUID()}`);
    const notMine = await del(two, KEY_A, id);
    expect(notMine.status).toBe(unknown.status);
    expect(notMine.status).toBe(404);
    expect(await notMine.json()).toEqual(await unknown.json());
    // B's thread is untouched and still B's.
    expect(await texts(one, KEY_B, id)).toContain("b's words");

    // The owner's DELETE answers 204; a second one (the id is unknown again) 404.
    expect((await del(two, KEY_B, id)).status).toBe(204);
    expect((await del(one, KEY_B, id)).status).toBe(404);
    expect(await texts(one, KEY_B, id)).toBeUndefined();
  });

  it("lets only one of two concurrent DELETEs by the owner delete, and frees the id after", async () => {
    const id = `twice-${randomUUID()}`;
    expect(await turn(await post(one, KEY_A, id, "first"))).toBe("ok");
    const statuses = (await Promise.all([del(one, KEY_A, id), del(two, KEY_A, id)])).map(
      (r) => r.status,
    );
    expect(statuses.sort()).toEqual([204, 404]);
    const { rows } = await pool.query(
      `SELECT 1 FROM "${schema}".thread_owners WHERE thread_id = $1`,
      [id],
    );
    expect(rows).toHaveLength(0);
    expect(await turn(await post(two, KEY_B, id, "b starts over"))).toBe("ok");
    expect(await texts(one, KEY_B, id)).not.toContain("first");
  });
});

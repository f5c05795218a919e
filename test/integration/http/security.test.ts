import { randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";
import type pg from "pg";
import type { RunningService } from "../../../src/service/composition-root.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../../helpers/db.js";
import { seededRandom } from "../../helpers/random.js";
import { aiChat, chatBody, say, startTestService, testConfig } from "./helpers.js";

const KEY_A = "key-a-0123456789abcdef";
const KEY_B = "key-b-0123456789abcdef";

describe("API security and input validation", () => {
  const schema = uniqueSchema("http_sec");
  let pool: pg.Pool;
  let service: RunningService;
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });
  const post = (body: string, headers: Record<string, string> = auth(KEY_A)) =>
    fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });

  beforeAll(async () => {
    await requirePostgres();
    pool = testPool(2);
    service = await startTestService(
      testConfig(schema, { auth: { apiKeys: [KEY_A, KEY_B] }, server: { bodyLimit: "4kb" } }),
    );
  });
  afterAll(async () => {
    await service?.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
  });

  it("answers 401 without a key or with a wrong one", async () => {
    for (const headers of [{}, auth("not-a-configured-key-at-all"), { authorization: KEY_A }]) {
      const res = await post(chatBody("t-401", "hi"), headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    }
    expect((await fetch(`${service.url}/api/chat/t-401/messages`)).status).toBe(401);
    // Ops endpoints stay open for probes and scrapers.
    expect((await fetch(`${service.url}/health/live`)).status).toBe(200);
  });

  it("gives another key's thread a 404 on every route, and stores only a hash of the key", async () => {
    const id = `owned-${randomUUID()}`;
    const chat = aiChat(service.url, id, { headers: auth(KEY_A) });
    expect(await say(chat, "mine")).toContain("turn 1");

    expect((await post(chatBody(id, "hijack"), auth(KEY_B))).status).toBe(404);
    const get = await fetch(`${service.url}/api/chat/${id}/messages`, { headers: auth(KEY_B) });
    expect(get.status).toBe(404);
    const del = await fetch(`${service.url}/api/chat/${id}`, {
      method: "DELETE",
      headers: auth(KEY_B),
    });
    expect(del.status).toBe(404);

    const own = await fetch(`${service.url}/api/chat/${id}/messages`, { headers: auth(KEY_A) });
    expect(own.status).toBe(200);
    expect(((await own.json()) as { messages: unknown[] }).messages).toHaveLength(2);

    const { rows } = await pool.query<{ key_hash: string }>(
      `SELECT key_hash FROM "${schema}".thread_owners WHERE thread_id = $1`,
      [id],
    );
    expect(rows[0]!.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0]!.key_hash).not.toContain(KEY_A);

    // Deleting frees the id: the other key may then start its own thread under it.
    expect(
      (await fetch(`${service.url}/api/chat/${id}`, { method: "DELETE", headers: auth(KEY_A) }))
        .status,
    ).toBe(204);
    expect((await post(chatBody(id, "now mine"), auth(KEY_B))).status).toBe(200);
  });

  it("rejects malformed, invalid and oversized bodies with 400/413 JSON", async () => {
    const cases: Array<[string, number]> = [
      ["{not json", 400],
      ["[]", 400],
      ["{}", 400],
      [JSON.stringify({ id: "ok", message: { id: "m", role: "user", parts: "nope" } }), 400],
      [
        JSON.stringify({
          id: "ok",
          message: { id: "m", role: "assistant", parts: [{ type: "text", text: "x" }] },
        }),
        400,
      ],
      [JSON.stringify({ id: "ok", message: { id: "m", role: "user", parts: [] } }), 400],
      [JSON.stringify({ id: "ok", messages: [] }), 400],
      [
        JSON.stringify({ id: "ok", message: { id: "m", role: "user", parts: [{ type: "text" }] } }),
        400,
      ],
      [chatBody("../../etc/passwd", "x"), 400],
      [chatBody("has space", "x"), 400],
      [chatBody("x".repeat(129), "x"), 400],
      [chatBody("ok", "y".repeat(10_000)), 413],
    ];
    for (const [body, status] of cases) {
      const res = await post(body);
      expect({ body: body.slice(0, 60), status: res.status }).toEqual({
        body: body.slice(0, 60),
        status,
      });
      const json = (await res.json()) as { error: { code: string; message: string } };
      expect(json.error.code).toBe("INVALID_INPUT");
      expect(json.error.message).not.toContain("yyyy");
    }
  });

  it("validates ids in paths", async () => {
    for (const id of ["bad%20id", "%3Cscript%3E", "-leading-dash", "a".repeat(200), "semi;colon"]) {
      const res = await fetch(`${service.url}/api/chat/${id}/messages`, { headers: auth(KEY_A) });
      expect(res.status).toBe(400);
      const del = await fetch(`${service.url}/api/chat/${id}`, {
        method: "DELETE",
        headers: auth(KEY_A),
      });
      expect(del.status).toBe(400);
    }
    expect(
      (await fetch(`${service.url}/api/chat/unknown-thread/messages`, { headers: auth(KEY_A) }))
        .status,
    ).toBe(404);
  });

  it("answers 400 INVALID_INPUT, not 500, to bodies that do not match their content-encoding", async () => {
    const cases: Array<[string, Buffer | string]> = [
      ["gzip", "this is not gzip"],
      ["gzip", gzipSync(Buffer.from(chatBody("ok", "x"))).subarray(0, 12)],
      ["deflate", "not deflate either"],
      ["br", Buffer.from([0xff, 0x00, 0x13])],
    ];
    for (const [encoding, body] of cases) {
      const res = await fetch(`${service.url}/api/chat`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-encoding": encoding,
          ...auth(KEY_A),
        },
        body,
      });
      expect({ encoding, status: res.status }).toEqual({ encoding, status: 400 });
      const json = (await res.json()) as { error: { code: string; message: string } };
      expect(json.error.code).toBe("INVALID_INPUT");
    }
    // A well-formed gzip body is accepted.
    const ok = await fetch(`${service.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", ...auth(KEY_A) },
      body: gzipSync(Buffer.from(chatBody(`gz-${randomUUID()}`, "zipped"))),
    });
    expect(ok.status).toBe(200);
    await ok.text();
  });

  it("answers 400 INVALID_INPUT, not 500, to paths with bad percent-encoding", async () => {
    for (const id of ["%E0%A4%A", "%ED%A0%80", "%FF", "%", "a%zzb"]) {
      for (const [method, path] of [
        ["GET", `/api/chat/${id}/messages`],
        ["DELETE", `/api/chat/${id}`],
      ] as const) {
        const res = await fetch(`${service.url}${path}`, { method, headers: auth(KEY_A) });
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
        const json = (await res.json()) as { error: { code: string } };
        expect(json.error.code).toBe("INVALID_INPUT");
      }
    }
  });

  it("survives 1,000 random bodies without a 5xx", async () => {
    const statuses = new Map<number, number>();
    // Seeded: a failure prints the seed, and FUZZ_SEED=<seed> replays the same 1,000 bodies.
    const rng = seededRandom("random bodies");
    const pick = <T>(xs: readonly T[]): T => rng.pick(xs);
    const randomValue = (depth: number): unknown => {
      const kind = rng.int(depth > 2 ? 5 : 8);
      switch (kind) {
        case 0:
          return null;
        case 1:
          return rng.next() < 0.5 ? rng.next() * 1e6 : -0;
        case 2:
          return rng.next() < 0.5;
        case 3:
          return rng.bytes(rng.int(40)).toString(pick(["hex", "base64", "latin1", "utf8"]));
        case 4:
          return pick([
            "",
            "user",
            "assistant",
            "text",
            "\u0000",
            "🙂",
            "submit-message",
            "regenerate-message",
          ]);
        case 5:
          return Array.from({ length: rng.int(4) }, () => randomValue(depth + 1));
        default: {
          const keys = [
            "id",
            "message",
            "messages",
            "role",
            "parts",
            "type",
            "text",
            "trigger",
            "metadata",
            "__proto__",
            "constructor",
          ];
          return Object.fromEntries(
            Array.from({ length: rng.int(5) }, () => [pick(keys), randomValue(depth + 1)]),
          );
        }
      }
    };
    const shaped = () => ({
      id: pick([rng.uuid(), "fuzz", "", 42, null, "a/b", randomValue(2)]),
      ...(rng.next() < 0.5
        ? {
            message: {
              id: pick(["m", "", 7, randomValue(2)]),
              role: pick(["user", "assistant", "x"]),
              parts: pick([
                [{ type: "text", text: pick(["hi", "", "\u0000", 5]) }],
                [randomValue(2)],
                randomValue(2),
              ]),
            },
          }
        : { messages: pick([[], [randomValue(1)], randomValue(1)]) }),
      ...(rng.next() < 0.3 ? { trigger: randomValue(2) } : {}),
    });
    const bodies = Array.from({ length: 1000 }, (_, i) => {
      if (i % 10 === 0) return rng.bytes(rng.int(200)).toString("latin1");
      return JSON.stringify(i % 2 === 0 ? shaped() : randomValue(0));
    });
    for (let i = 0; i < bodies.length; i += 25) {
      await Promise.all(
        bodies.slice(i, i + 25).map(async (body) => {
          const res = await post(body);
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }),
      );
    }
    const serverErrors = [...statuses].filter(([status]) => status >= 500);
    expect(serverErrors, `seed ${rng.seed}`).toEqual([]);
    expect((await fetch(`${service.url}/health/ready`)).status).toBe(200);
  });

  it("rate limits per key with 429", async () => {
    const limited = await startTestService(
      testConfig(uniqueSchema("http_rl"), {
        database: { schema },
        auth: { apiKeys: [KEY_A, KEY_B] },
        server: { rateLimit: { max: 3, window: "1m" } },
      }),
    );
    try {
      const get = (key: string) =>
        fetch(`${limited.url}/api/chat/nope/messages`, { headers: auth(key) });
      const a = [];
      for (let i = 0; i < 4; i++) a.push((await get(KEY_A)).status);
      expect(a).toEqual([404, 404, 404, 429]);
      // Another key has its own budget.
      expect((await get(KEY_B)).status).toBe(404);
    } finally {
      await limited.shutdown("test");
    }
  });
});

import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dropSchema,
  requirePostgres,
  TEST_DATABASE_URL,
  testPool,
  uniqueSchema,
} from "../../helpers/db.js";
import { AGENT_FILE, FIXTURES, serveGraphs, serveUntilExit } from "./helpers.js";

const schema = uniqueSchema("tl_graphs");
const pool = testPool(1);

beforeAll(requirePostgres);
afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

describe("threadline serve --graph", () => {
  it("loads every export form from --graph, config.yaml graphs and ./langgraph.json", async () => {
    const project = join(FIXTURES, "project");
    const served = await serveGraphs(
      schema,
      [
        "--config",
        join(project, "conf", "config.yaml"),
        "--graph",
        `builder=${AGENT_FILE}:builder`,
        "--graph",
        `factory=${AGENT_FILE}:makeGraph`,
        "--graph",
        `js=${join(FIXTURES, "plain.mjs")}:graph`,
      ],
      {},
      90_000,
      project,
    );
    try {
      const client = new Client({ apiUrl: served.url, apiKey: null });
      const assistants = await client.assistants.search({ limit: 50 });
      expect(assistants.map((a) => a.graph_id).sort()).toEqual([
        "builder",
        "chat",
        "described",
        "factory",
        "from_config",
        "from_json",
        "js",
      ]);
      expect(assistants.find((a) => a.graph_id === "described")!.description).toBe(
        "the agent, built by a factory",
      );
      for (const id of ["builder", "factory", "from_json", "described"]) {
        const out = (await client.runs.wait(null, id, {
          input: { messages: [{ role: "user", content: "What is my name?" }] },
        })) as { messages: { content: string }[] };
        expect(out.messages.at(-1)!.content).toBe("I do not know your name yet.");
      }
      for (const id of ["js", "from_config"]) {
        expect(await client.runs.wait(null, id, { input: { count: 2 } })).toEqual({ count: 3 });
      }
      // The built-in chat graph is served too (offline model: "turn N").
      const chat = (await client.runs.wait(null, "chat", {
        input: { messages: [{ role: "user", content: "hi" }] },
      })) as { messages: { content: string }[] };
      expect(chat.messages.at(-1)!.content).toContain("turn 1");
    } finally {
      await served.stop();
    }
  }, 180_000);

  it.each([
    [
      "a file that throws while loading",
      `${FIXTURES}broken.ts:graph`,
      /broken\.ts:graph.*broken on purpose/,
    ],
    ["a missing export", `${AGENT_FILE}:nope`, /agent\.ts:nope.*no export "nope"/],
  ])(
    "%s stops serve with exit 2 and one line naming the file and export",
    async (_what, target, line) => {
      const { code, stderr } = await serveUntilExit(["--graph", `bad=${target}`], {
        DATABASE_URL: TEST_DATABASE_URL,
      });
      expect(code).toBe(2);
      const lines = stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(line);
      expect(lines[0]).toMatch(/^threadline: graph "bad"/);
    },
    60_000,
  );
});

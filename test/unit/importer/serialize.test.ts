import { JsonPlusSerializer } from "@langchain/langgraph-checkpoint";
import { describe, expect, it } from "vitest";
import type { ThreadPlan } from "../../../src/importer/assemble.js";
import { serializeThread } from "../../../src/importer/serialize.js";

function plan(checkpoint: Record<string, unknown>): ThreadPlan {
  return {
    threadId: "t",
    formats: ["js"],
    checkpoints: [{ ns: "", id: "c1", parentId: null, checkpoint, metadata: {} }],
    blobs: [{ ns: "", channel: "messages", version: 1, value: ["hé", { a: 1 }] }],
    writes: [],
    createdAt: null,
    lastActivity: null,
    fingerprint: "full|=c1",
    sourceCheckpoints: 1,
    channelsWithoutValue: 0,
    orphanWrites: 0,
    flags: new Map(),
  };
}

describe("serializeThread", () => {
  it("removes NUL characters from checkpoint strings and keys, and leaves other text as it is", async () => {
    const serde = new JsonPlusSerializer();
    const rows = await serializeThread(
      plan({ v: 4, id: "c1", ts: "x", "k\0ey": "a\0b", literal: "\\u0000 stays" }),
      serde,
    );
    expect(JSON.parse(rows.checkpoints[0]!.checkpoint)).toEqual({
      v: 4,
      id: "c1",
      ts: "x",
      key: "ab",
      literal: "\\u0000 stays",
    });
    const clean = await serializeThread(plan({ v: 4, id: "c1", ts: "x" }), serde);
    expect(clean.checkpoints[0]!.checkpoint).toBe('{"v":4,"id":"c1","ts":"x"}');
    expect(Buffer.from(clean.blobs[0]!.blob!).toString("utf8")).toBe('["hé",{"a":1}]');
  });

  it("keeps plain JSON values as their JSON text, for the COPY encoder to write as UTF-8", async () => {
    const rows = await serializeThread(plan({ v: 4, id: "c1", ts: "x" }), new JsonPlusSerializer());
    expect(rows.blobs[0]!.blob).toBe('["hé",{"a":1}]');
  });
});

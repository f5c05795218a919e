import { ADAPTERS } from "../../../src/importer/formats/index.js";
import { parseDoc } from "../../../src/importer/formats/common.js";
import { planThread, ThreadCollector } from "../../../src/importer/assemble.js";
import type { RawRecord } from "../../../src/importer/types.js";

function decode(record: RawRecord) {
  const doc = parseDoc(record);
  const adapter = ADAPTERS.find((a) => a.detect(record, doc));
  if (!adapter) throw new Error(`no adapter for ${record.key}`);
  return adapter.decode(record, doc);
}

const json = (key: string, value: unknown): RawRecord => ({
  key,
  kind: "json",
  text: JSON.stringify(value),
});
const hm = (key: string, fields: Record<string, string>): RawRecord => ({
  key,
  kind: "hash",
  fields: new Map(Object.entries(fields).map(([k, v]) => [k, Buffer.from(v)])),
});

const human = {
  lc: 1,
  type: "constructor",
  id: ["langchain_core", "messages", "HumanMessage"],
  kwargs: { content: "hi", id: "h" },
};

describe("importer format readers", () => {
  it("takes ids from documents, not keys, even when channel names contain ':'", () => {
    const rec = decode(
      json("checkpoint_blob:t:with:colons::branch:to:agent:2", {
        thread_id: "t:with:colons",
        checkpoint_ns: "__empty__",
        channel: "branch:to:agent",
        version: "2",
        type: "json",
        value: null,
      }),
    );
    expect(rec).toMatchObject({
      kind: "blob",
      format: "js",
      blob: { threadId: "t:with:colons", ns: "", channel: "branch:to:agent", version: "2" },
    });
  });

  it("reads Python 0.0.x parent-keyed checkpoints under their real id", () => {
    const rec = decode(
      json("checkpoint:t:__empty__:parent-id", {
        thread_id: "t",
        checkpoint_ns: "__empty__",
        checkpoint_id: "parent-id",
        parent_checkpoint_id: "parent-id",
        checkpoint: {
          type: "json",
          v: 3,
          id: "real-id",
          ts: "2025-06-01T00:00:00+00:00",
          channel_values: {},
          channel_versions: {},
          versions_seen: {},
          pending_sends: [],
        },
        metadata: '{"source": "loop", "step": 1, "writes": null}',
      }),
    );
    expect(rec).toMatchObject({
      kind: "checkpoint",
      format: "python-0.0",
      checkpoint: { id: "real-id", parentId: "parent-id" },
    });
  });

  it("tells the how-to hash layout from checkpoint-redis's comma bytes", () => {
    const cp = {
      v: 4,
      id: "c1",
      ts: "2025-01-01T00:00:00.000Z",
      channel_values: { messages: [human] },
      channel_versions: { messages: 1 },
      versions_seen: {},
    };
    const commas = (s: string) => Array.from(Buffer.from(s)).join(",");
    const howto = decode(
      hm("checkpoint:t1::c1", {
        checkpoint: JSON.stringify(cp),
        type: "json",
        metadata: "{}",
        parent_checkpoint_id: "",
      }),
    );
    const levi = decode(
      hm("checkpoint:t1::c1", {
        checkpoint: commas(JSON.stringify(cp)),
        type: "json",
        metadata: commas("{}"),
        metadata_type: "json",
        parent_checkpoint_id: "",
      }),
    );
    expect(howto.format).toBe("howto-colon");
    expect(levi.format).toBe("checkpoint-redis");
    const dollar = decode(
      hm("writes$t:1$$c1$task$0", { channel: "messages", type: "json", value: "[]" }),
    );
    expect(dollar).toMatchObject({
      format: "howto-dollar",
      write: { threadId: "t:1", ns: "", checkpointId: "c1", taskId: "task", idx: 0 },
    });
  });

  it("rebuilds JS <= 1.0.9 delta checkpoints from the ancestor that holds the value", () => {
    const collector = new ThreadCollector();
    const doc = (id: string, values: Record<string, unknown>, versions: Record<string, number>) =>
      json(`checkpoint:t::${id}`, {
        thread_id: "t",
        checkpoint_ns: "__empty__",
        checkpoint_id: id,
        parent_checkpoint_id: null,
        checkpoint: {
          v: 4,
          id,
          ts: "2025-01-01T00:00:00.000Z",
          channel_values: values,
          channel_versions: versions,
          versions_seen: {},
        },
        metadata: { source: "loop", step: 1 },
      });
    for (const r of [
      doc("1", { messages: [human] }, { messages: 1 }),
      doc("2", { __start__: "x" }, { messages: 1, __start__: 2 }),
    ]) {
      const d = decode(r);
      collector.add(d);
    }
    const plan = planThread(collector.threads.get("t")!, "latest");
    expect(plan.checkpoints.map((c) => c.id)).toEqual(["2"]);
    expect(plan.blobs.map((b) => [b.channel, b.version]).sort()).toEqual([
      ["__start__", 2],
      ["messages", 1],
    ]);
    expect(plan.channelsWithoutValue).toBe(0);
  });
});

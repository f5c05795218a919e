import { fileURLToPath } from "node:url";
import { MemorySaver } from "@langchain/langgraph";
import { describe, expect, it } from "vitest";
import { isThreadlineError } from "../../../src/errors.js";
import { GraphRegistry, loadGraph, uuidV5 } from "../../../src/graphs/load.js";
import {
  graphsFromConfig,
  mergeGraphSpecs,
  parseGraphFlag,
  parseGraphTarget,
  type GraphSpec,
} from "../../../src/graphs/spec.js";

const FIXTURES = fileURLToPath(new URL("../../fixtures/graphs/", import.meta.url));
const AGENT = `${FIXTURES}agent.ts`;

const spec = (exportName: string, file = AGENT): GraphSpec => ({
  name: "g",
  file,
  exportName,
  source: "flag",
});

async function loadError(s: GraphSpec): Promise<string> {
  try {
    await loadGraph(s);
  } catch (err) {
    expect(isThreadlineError(err, "CONFIG_INVALID")).toBe(true);
    return (err as Error).message;
  }
  throw new Error("expected loadGraph to fail");
}

describe("graph specs", () => {
  it("parses name=path:export relative to the working directory", () => {
    expect(parseGraphFlag("agent=./src/agent.ts:graph", "/proj")).toEqual({
      name: "agent",
      file: "/proj/src/agent.ts",
      exportName: "graph",
      source: "flag",
    });
    expect(parseGraphTarget("./a.js", "/p")).toEqual({ file: "/p/a.js", exportName: "default" });
  });

  it("rejects a value without a name, and names outside the allowed characters", () => {
    expect(() => parseGraphFlag("./agent.ts:graph", "/p")).toThrow(
      /expected <name>=<path>:<export>/,
    );
    expect(() => parseGraphFlag("bad name=./a.ts:g", "/p")).toThrow(/graph name "bad name"/);
  });

  it("flags replace config graphs of the same name", () => {
    const fromConfig = graphsFromConfig({ agent: "/c/a.ts:graph", other: "/c/o.ts:g" }, "/c");
    const merged = mergeGraphSpecs(fromConfig, [parseGraphFlag("agent=/f/a.ts:graph", "/")]);
    expect(merged.map((s) => [s.name, s.file, s.source])).toEqual([
      ["agent", "/f/a.ts", "flag"],
      ["other", "/c/o.ts", "config"],
    ]);
  });

  it("assistant ids are the Agent Server's UUIDv5 of the graph name", () => {
    // `langgraph dev` serves a graph named "agent" as this assistant id.
    expect(uuidV5("agent")).toBe("fe096781-5601-53d2-b2f6-0d3403f7e9ca");
  });
});

describe("loadGraph", () => {
  it("loads a compiled graph, a StateGraph and an async factory, each with the given saver", async () => {
    const saver = new MemorySaver();
    for (const name of ["graph", "builder", "makeGraph"]) {
      const loaded = (await loadGraph(spec(name))).bind(saver);
      const graph = await loaded.resolve({});
      expect(graph.checkpointer).toBe(saver);
      expect(Object.keys(graph.nodes)).toEqual(expect.arrayContaining(["agent", "tools"]));
    }
  });

  it("names the file and export when the export is missing, not a graph, or the file is absent", async () => {
    expect(await loadError(spec("nope"))).toMatch(
      /^graph "g" \(.*agent\.ts:nope\): the file has no export "nope" \(it exports .*graph.*\)$/,
    );
    expect(await loadError(spec("notAGraph"))).toMatch(
      /agent\.ts:notAGraph\): the export "notAGraph" is not a compiled graph/,
    );
    expect(await loadError(spec("graph", `${FIXTURES}missing.ts`))).toMatch(
      /missing\.ts:graph\): file not found$/,
    );
    const broken = await loadError(spec("graph", `${FIXTURES}broken.ts`));
    expect(broken).toMatch(/broken\.ts:graph\): cannot load the file: .*broken on purpose/);
    expect(broken).not.toContain("\n");
  });

  it("finds graphs by assistant id or by name", async () => {
    const loaded = (await loadGraph({ ...spec("graph"), name: "agent" })).bind(new MemorySaver());
    const registry = new GraphRegistry([loaded], "agent");
    expect(registry.find("agent")).toBe(loaded);
    expect(registry.find(loaded.assistantId.toUpperCase())).toBe(loaded);
    expect(registry.find("other")).toBeUndefined();
  });
});

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { extname } from "node:path";
import { pathToFileURL } from "node:url";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type { CompiledGraph } from "@langchain/langgraph";
import { ThreadlineError } from "../errors.js";
import type { GraphSpec } from "./spec.js";

/** A compiled LangGraph graph the service can run: what `StateGraph.compile()` returns. */
export type ServableGraph = CompiledGraph<string>;

/** A graph ready to serve: its name, its assistant id, and how to get the runnable graph. */
export interface LoadedGraph {
  /** `graph_id`. */
  name: string;
  /** Stable assistant id: UUIDv5 of the name (the Agent Server's own derivation). */
  assistantId: string;
  description: string | undefined;
  /** Where it came from, for logs: `path:export`, or `built-in`. */
  origin: string;
  /**
   * The graph for a run. Compiled graphs and `StateGraph`s are resolved once at load; a factory
   * is called again for every run with the run's config (as the Agent Server does), so it can
   * build per-request graphs. The service's checkpointer is always attached.
   */
  resolve(config?: RunnableConfig): Promise<ServableGraph>;
  /** The graph as loaded at start (for `/assistants/{id}/graph` and schemas). */
  readonly graph: ServableGraph;
}

/**
 * The Agent Server's namespace for assistant ids (`uuid5(NAMESPACE_GRAPH, graph_id)`), so a graph
 * keeps the assistant id it has under `langgraph dev`.
 */
const NAMESPACE_GRAPH = "6ba7b821-9dad-11d1-80b4-00c04fd430c8";

/** RFC 4122 version-5 UUID of `name` in `namespace`. */
export function uuidV5(name: string, namespace: string = NAMESPACE_GRAPH): string {
  const ns = Buffer.from(namespace.replace(/-/g, ""), "hex");
  const hash = createHash("sha1").update(ns).update(name, "utf8").digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Duck typing, not `instanceof`: a user project may bring its own copy of @langchain/langgraph. */
function isCompiledGraph(value: unknown): value is ServableGraph {
  if (value === null || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.stream === "function" &&
    typeof v.getState === "function" &&
    typeof v.updateState === "function" &&
    typeof v.nodes === "object"
  );
}

function isStateGraph(value: unknown): value is { compile(options: object): unknown } {
  if (value === null || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return typeof v.compile === "function" && typeof v.addNode === "function";
}

const TS_EXTENSIONS = new Set([".ts", ".mts", ".cts", ".tsx"]);

/** Imports a user module: `.js`/`.mjs`/`.cjs` natively, TypeScript through tsx's loader API. */
async function importModule(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  if (TS_EXTENSIONS.has(extname(file))) {
    // Loaded only for TypeScript graphs, so serving JavaScript never starts esbuild.
    const { tsImport } = await import("tsx/esm/api");
    return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
  }
  return (await import(url)) as Record<string, unknown>;
}

/** First line of an error's message: the CLI prints one line. */
function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split("\n").find((l) => l.trim() !== "") ?? message).trim();
}

/** Turns whatever the export holds (or its factory returned) into a compiled graph. */
function toGraph(value: unknown, checkpointer: BaseCheckpointSaver, what: string): ServableGraph {
  if (isCompiledGraph(value)) {
    // The service's checkpointer replaces the graph's own (or none), like the Agent Server does.
    value.checkpointer = checkpointer;
    return value;
  }
  if (isStateGraph(value)) {
    const compiled = value.compile({ checkpointer });
    if (isCompiledGraph(compiled)) return compiled;
  }
  throw new ThreadlineError(
    "CONFIG_INVALID",
    `${what} is not a compiled graph, a StateGraph, or a factory returning one`,
  );
}

/** A user graph whose module loaded and whose export holds a graph; not yet bound to a saver. */
export interface GraphModule {
  name: string;
  description: string | undefined;
  origin: string;
  /** Attaches the service's checkpointer (its saver stack) and returns the servable graph. */
  bind(checkpointer: BaseCheckpointSaver): LoadedGraph;
}

/**
 * Loads one user graph: imports the module, finds the export, and checks what it holds (calling
 * a factory once), so that a broken graph stops `serve` at start, not at the first run.
 *
 * @throws ThreadlineError CONFIG_INVALID naming the file and the export, in one line.
 */
export async function loadGraph(spec: GraphSpec): Promise<GraphModule> {
  const origin = `${spec.file}:${spec.exportName}`;
  const fail = (message: string, cause?: unknown) =>
    new ThreadlineError("CONFIG_INVALID", `graph "${spec.name}" (${origin}): ${message}`, {
      ...(cause !== undefined ? { cause } : {}),
    });
  if (!existsSync(spec.file)) throw fail("file not found");
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(spec.file);
  } catch (err) {
    throw fail(`cannot load the file: ${reason(err)}`, err);
  }
  if (!(spec.exportName in mod) || mod[spec.exportName] === undefined) {
    const names = Object.keys(mod).filter((k) => k !== "__esModule");
    throw fail(
      `the file has no export "${spec.exportName}"${names.length > 0 ? ` (it exports ${names.join(", ")})` : ""}`,
    );
  }
  const exported = mod[spec.exportName];
  const common = { name: spec.name, description: spec.description, origin };
  const notAGraph = (what: string) =>
    fail(`${what} is not a compiled graph, a StateGraph, or a factory returning one`);

  if (typeof exported === "function" && !isStateGraph(exported)) {
    const factory = exported as (config: RunnableConfig) => unknown;
    let first: unknown;
    try {
      first = await factory({});
    } catch (err) {
      throw fail(`the factory failed: ${reason(err)}`, err);
    }
    if (!isCompiledGraph(first) && !isStateGraph(first))
      throw notAGraph(`what the factory "${spec.exportName}" returned`);
    return {
      ...common,
      bind: (checkpointer) => ({
        ...common,
        assistantId: uuidV5(spec.name),
        graph: toGraph(first, checkpointer, origin),
        resolve: async (config = {}) =>
          toGraph(
            await factory(config),
            checkpointer,
            `the factory "${spec.exportName}" returned what`,
          ),
      }),
    };
  }
  if (!isCompiledGraph(exported) && !isStateGraph(exported))
    throw notAGraph(`the export "${spec.exportName}"`);
  return {
    ...common,
    bind: (checkpointer) => {
      const graph = toGraph(exported, checkpointer, origin);
      return {
        ...common,
        assistantId: uuidV5(spec.name),
        graph,
        resolve: () => Promise.resolve(graph),
      };
    },
  };
}

/** A graph built in-process (the built-in chat graph). */
export function builtInGraph(name: string, graph: ServableGraph, description: string): LoadedGraph {
  return {
    name,
    assistantId: uuidV5(name),
    description,
    origin: "built-in",
    resolve: () => Promise.resolve(graph),
    graph,
  };
}

/** The graphs the service serves, by name and by assistant id. */
export class GraphRegistry {
  private readonly byName = new Map<string, LoadedGraph>();
  private readonly byId = new Map<string, LoadedGraph>();

  constructor(
    graphs: readonly LoadedGraph[],
    /** The graph `/api/chat` runs and the first assistant listed. */
    readonly defaultName: string,
  ) {
    for (const g of graphs) {
      this.byName.set(g.name, g);
      this.byId.set(g.assistantId, g);
    }
  }

  /** Every graph, the default first, then by name. */
  list(): LoadedGraph[] {
    return [...this.byName.values()].sort((a, b) =>
      a.name === this.defaultName
        ? -1
        : b.name === this.defaultName
          ? 1
          : a.name.localeCompare(b.name),
    );
  }

  /** A graph by assistant id (UUID) or by graph name; undefined when neither matches. */
  find(idOrName: string): LoadedGraph | undefined {
    return this.byId.get(idOrName.toLowerCase()) ?? this.byName.get(idOrName);
  }
}

/**
 * Loads every spec in order; the first failure stops (it names its file and export).
 *
 * @throws ThreadlineError CONFIG_INVALID
 */
export async function loadGraphs(specs: readonly GraphSpec[]): Promise<GraphModule[]> {
  const loaded: GraphModule[] = [];
  for (const spec of specs) loaded.push(await loadGraph(spec));
  return loaded;
}

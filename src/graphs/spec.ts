import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { ThreadlineError } from "../errors.js";

/** Where a graph was named: a `--graph` flag, the `graphs:` map of config.yaml, or langgraph.json. */
export type GraphSource = "flag" | "config" | "langgraph.json";

/** One user graph to serve: `name=path:export`, with the path already absolute. */
export interface GraphSpec {
  /** The graph's id (`graph_id`), also accepted as its assistant id. */
  name: string;
  /** Absolute path of the module (`.js`, `.mjs`, `.cjs`, `.ts`, `.mts`, `.cts`). */
  file: string;
  /** Export of the module holding the graph or its factory. Default `default`. */
  exportName: string;
  /** Free text shown as the assistant's description (langgraph.json object form). */
  description?: string;
  source: GraphSource;
}

/** Graph names: what LangGraph projects use, safe in URLs and logs. */
export const GRAPH_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

function invalid(message: string): ThreadlineError {
  return new ThreadlineError("CONFIG_INVALID", message);
}

/**
 * Splits `path:export` (the form of langgraph.json values). The export is what follows the last
 * `:` when that part looks like an identifier, so `C:\x.js` style paths are not cut.
 */
export function parseGraphTarget(
  target: string,
  baseDir: string,
): { file: string; exportName: string } {
  const colon = target.lastIndexOf(":");
  let path = target;
  let exportName = "default";
  if (colon > 0 && /^[A-Za-z_$][\w$]*$/.test(target.slice(colon + 1))) {
    path = target.slice(0, colon);
    exportName = target.slice(colon + 1);
  }
  if (path.trim() === "") throw invalid(`graph target "${target}" names no file`);
  return { file: isAbsolute(path) ? path : resolve(baseDir, path), exportName };
}

function checkName(name: string, where: string): void {
  if (!GRAPH_NAME_RE.test(name))
    throw invalid(
      `${where}: graph name "${name}" must match ${GRAPH_NAME_RE.source} (letters, digits, _ . -)`,
    );
}

/** Parses one `--graph <name>=<path>:<export>` value; the path is relative to `cwd`. */
export function parseGraphFlag(value: string, cwd: string): GraphSpec {
  const eq = value.indexOf("=");
  if (eq <= 0)
    throw invalid(
      `--graph "${value}": expected <name>=<path>:<export>, e.g. agent=./agent.ts:graph`,
    );
  const name = value.slice(0, eq);
  checkName(name, "--graph");
  return { name, ...parseGraphTarget(value.slice(eq + 1), cwd), source: "flag" };
}

/** The `graphs:` map of config.yaml; paths are relative to the config file's folder. */
export function graphsFromConfig(
  graphs: Readonly<Record<string, string>>,
  configDir: string,
): GraphSpec[] {
  return Object.entries(graphs).map(([name, target]) => {
    checkName(name, "config graphs");
    return { name, ...parseGraphTarget(target, configDir), source: "config" as const };
  });
}

/**
 * The `graphs` of `langgraph.json` in `dir`, if the file exists. Values are `"./path.ts:export"`
 * or `{ "path": "./path.ts:export", "description": "..." }`; paths are relative to `dir`.
 */
export function graphsFromLangGraphJson(dir: string): GraphSpec[] {
  const file = join(dir, "langgraph.json");
  if (!existsSync(file)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw invalid(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const graphs = (parsed as { graphs?: unknown } | null)?.graphs;
  if (graphs === undefined) return [];
  if (graphs === null || typeof graphs !== "object" || Array.isArray(graphs))
    throw invalid(`${file}: "graphs" must be an object of name -> "path:export"`);
  return Object.entries(graphs as Record<string, unknown>).map(([name, value]) => {
    checkName(name, file);
    const target =
      typeof value === "string"
        ? value
        : value !== null &&
            typeof value === "object" &&
            typeof (value as { path?: unknown }).path === "string"
          ? (value as { path: string }).path
          : undefined;
    if (target === undefined)
      throw invalid(`${file}: graph "${name}" must be "path:export" or { "path": "path:export" }`);
    const description = (value as { description?: unknown }).description;
    return {
      name,
      ...parseGraphTarget(target, dir),
      ...(typeof description === "string" ? { description } : {}),
      source: "langgraph.json" as const,
    };
  });
}

/**
 * Every graph to serve, by name: langgraph.json first, then config.yaml, then `--graph` flags;
 * a later source replaces an earlier one of the same name (flags win).
 */
export function mergeGraphSpecs(...lists: readonly GraphSpec[][]): GraphSpec[] {
  const byName = new Map<string, GraphSpec>();
  for (const list of lists) for (const spec of list) byName.set(spec.name, spec);
  return [...byName.values()];
}

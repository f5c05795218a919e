import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../errors.js";
import { coerceLeaf, configLeaves, envNameFor } from "./keys.js";
import { configSchema, type ThreadlineConfig } from "./schema.js";

export interface LoadConfigOptions {
  /** Environment to read; defaults to `process.env`. This module is the only reader of it. */
  env?: NodeJS.ProcessEnv;
  /** Values that win over file and env (CLI flags), as a partial config tree. */
  overrides?: Record<string, unknown>;
}

/** Environment variables that carry one config leaf under a conventional name. */
const ENV_ALIASES: Record<string, string> = {
  DATABASE_URL: "database.url",
  PORT: "server.port",
  THREADLINE_API_KEYS: "auth.apiKeys",
  OPENAI_API_KEY: "model.apiKey",
};

/** Leaves that hold secrets: they may come from env or `${VAR}`, never from a literal in a file. */
const SECRET_PATHS = new Set(["auth.apiKeys", "model.apiKey"]);

/** `database.pool.maxOverflow` -> `THREADLINE_DATABASE_POOL_MAX_OVERFLOW` (see `configLeaves`). */
export { envNameFor } from "./keys.js";

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== "object" || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function getPath(source: unknown, path: string): unknown {
  let node = source;
  for (const part of path.split(".")) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

const INTERPOLATION_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${VAR}` and `${VAR:-default}` in every string of a parsed YAML tree. */
function interpolate(
  node: unknown,
  env: NodeJS.ProcessEnv,
  path: string,
  problems: string[],
): unknown {
  if (typeof node === "string") {
    return node.replace(INTERPOLATION_RE, (_m, name: string, fallback: string | undefined) => {
      const value = env[name];
      if (value !== undefined && value !== "") return value;
      if (fallback !== undefined) return fallback;
      problems.push(
        `${path}: environment variable ${name} is not set; set it or write \${${name}:-default}`,
      );
      return "";
    });
  }
  if (Array.isArray(node))
    return node.map((v, i) => interpolate(v, env, `${path}[${i}]`, problems));
  if (node !== null && typeof node === "object") {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [
        k,
        interpolate(v, env, path ? `${path}.${k}` : k, problems),
      ]),
    );
  }
  return node;
}

function findLiteralSecrets(raw: unknown, problems: string[]): void {
  for (const path of SECRET_PATHS) {
    const value = getPath(raw, path);
    const literal = (v: unknown) => typeof v === "string" && v !== "" && !v.includes("${");
    if (literal(value) || (Array.isArray(value) && value.some(literal))) {
      problems.push(
        `${path}: secrets must not be written in the config file; use \${ENV_VAR} or set ${envNameFor(path)}`,
      );
    }
  }
  const url = getPath(raw, "database.url");
  if (typeof url === "string" && !url.includes("${") && /:\/\/[^/@]*:[^/@]+@/.test(url)) {
    problems.push(
      "database.url: the file contains a password; use url: ${DATABASE_URL} and set DATABASE_URL in the environment",
    );
  }
  const directUrl = getPath(raw, "database.directUrl");
  if (
    typeof directUrl === "string" &&
    !directUrl.includes("${") &&
    /:\/\/[^/@]*:[^/@]+@/.test(directUrl)
  ) {
    problems.push(
      "database.directUrl: the file contains a password; use directUrl: ${DIRECT_DATABASE_URL} (any variable name) and set it in the environment",
    );
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.join(".") || "(root)";
  if (issue.code === "unrecognized_keys") {
    return `${path === "(root)" ? "" : `${path}: `}unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}; remove them or check the spelling against config.yaml`;
  }
  return `${path}: ${issue.message}`;
}

/**
 * Reads `config.yaml` (or `path`), interpolates `${VAR}`, applies env overrides
 * (`DATABASE_URL`, `PORT`, `THREADLINE_API_KEYS`, `THREADLINE_<SECTION>_<KEY>`), then flag overrides,
 * and validates the result with one strict schema. Precedence: defaults < file < env < overrides.
 *
 * @throws ConfigError listing every problem at once, each with its fix.
 */
export function loadConfig(path?: string, options: LoadConfigOptions = {}): ThreadlineConfig {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const file = path ?? env.THREADLINE_CONFIG ?? "./config.yaml";
  let tree: Record<string, unknown> = {};

  if (existsSync(file)) {
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(file, "utf8"));
    } catch (err) {
      throw new ConfigError([`${file}: not valid YAML (${(err as Error).message})`], {
        cause: err,
      });
    }
    if (raw !== null && raw !== undefined && (typeof raw !== "object" || Array.isArray(raw))) {
      throw new ConfigError([`${file}: the top level must be a mapping of sections`]);
    }
    findLiteralSecrets(raw, problems);
    tree = (interpolate(raw ?? {}, env, "", problems) as Record<string, unknown>) ?? {};
  } else if (path !== undefined || env.THREADLINE_CONFIG !== undefined) {
    throw new ConfigError([`${file}: file not found; pass an existing --config path`]);
  }

  const leaves = configLeaves();
  const kinds = new Map(leaves.map((leaf) => [leaf.path, leaf.kind]));
  const fromEnv = (name: string, leaf: string) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return;
    setPath(tree, leaf, coerceLeaf(raw, kinds.get(leaf) ?? "string"));
  };
  // Conventional names first, so the THREADLINE_* name of the same key wins when both are set.
  for (const [name, leaf] of Object.entries(ENV_ALIASES)) fromEnv(name, leaf);
  for (const leaf of leaves) fromEnv(leaf.envName, leaf.path);
  for (const [leaf, value] of Object.entries(flatten(options.overrides ?? {}))) {
    if (value !== undefined) setPath(tree, leaf, value);
  }

  const result = configSchema.safeParse(tree);
  if (!result.success) problems.push(...result.error.issues.map(describeIssue));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  // Graph paths in the file are relative to the file, wherever the process was started.
  const base = existsSync(file) ? dirname(resolve(file)) : process.cwd();
  for (const [name, target] of Object.entries(result.data.graphs)) {
    if (!isAbsolute(target)) result.data.graphs[name] = resolve(base, target);
  }
  return result.data;
}

function flatten(node: Record<string, unknown>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      Object.assign(out, flatten(value as Record<string, unknown>, path));
    } else out[path] = value;
  }
  return out;
}

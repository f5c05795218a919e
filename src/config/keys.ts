import type { z } from "zod";
import { configSchema } from "./schema.js";

/**
 * How an environment string (or a CLI flag) is turned into a value before the schema validates
 * it: `number` and `boolean` are parsed when they look like one, `duration` stays a string
 * unless it is a bare number of milliseconds, `list` splits on commas, `map` splits
 * `name=value` pairs on commas, `string` is taken as is.
 */
export type LeafKind = "string" | "number" | "boolean" | "duration" | "list" | "map";

/** One settable key of the config schema. */
export interface ConfigLeaf {
  /** Dotted path, e.g. `database.pool.maxOverflow`. */
  path: string;
  /** The derived environment variable, e.g. `THREADLINE_DATABASE_POOL_MAX_OVERFLOW`. */
  envName: string;
  kind: LeafKind;
  /** The leaf's own schema (with its default or optional wrapper), for validating one value. */
  schema: z.ZodType;
}

interface ZodNode {
  _zod: {
    def: {
      type: string;
      innerType?: ZodNode;
      shape?: Record<string, ZodNode>;
      in?: ZodNode;
      options?: ZodNode[];
    };
  };
}

const WRAPPERS = new Set(["default", "prefault", "optional", "nullable", "readonly", "catch"]);

function unwrap(node: ZodNode): ZodNode {
  let current = node;
  while (WRAPPERS.has(current._zod.def.type) && current._zod.def.innerType)
    current = current._zod.def.innerType;
  return current;
}

function kindOf(node: ZodNode): LeafKind {
  const inner = unwrap(node);
  const def = inner._zod.def;
  switch (def.type) {
    case "number":
    case "int":
      return "number";
    case "boolean":
      return "boolean";
    case "array":
      return "list";
    case "record":
      return "map";
    case "pipe":
      // A transform (durations): what matters is the input it accepts.
      return def.in ? kindOf(def.in) : "string";
    case "union": {
      const kinds = new Set((def.options ?? []).map(kindOf));
      return kinds.has("number") && kinds.has("string") ? "duration" : kindOf(def.options![0]!);
    }
    default:
      return "string";
  }
}

/** `database.pool.maxOverflow` -> `THREADLINE_DATABASE_POOL_MAX_OVERFLOW`. */
export function envNameFor(path: string): string {
  return `THREADLINE_${path
    .split(".")
    .map((s) => s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase())
    .join("_")}`;
}

function walk(node: ZodNode, prefix: string, out: ConfigLeaf[]): void {
  const inner = unwrap(node);
  if (inner._zod.def.type === "object" && inner._zod.def.shape) {
    for (const [key, child] of Object.entries(inner._zod.def.shape))
      walk(child, prefix ? `${prefix}.${key}` : key, out);
    return;
  }
  out.push({
    path: prefix,
    envName: envNameFor(prefix),
    kind: kindOf(node),
    schema: node as unknown as z.ZodType,
  });
}

let cached: readonly ConfigLeaf[] | undefined;

/**
 * Every leaf of the config schema, read from the zod shape itself, so a key added to
 * `schema.ts` gets its `THREADLINE_<SECTION>_<KEY>` variable (and flag validation) with no other
 * edit. Nested sections add their names: `server.cors.origins` -> `THREADLINE_SERVER_CORS_ORIGINS`.
 */
export function configLeaves(): readonly ConfigLeaf[] {
  if (cached) return cached;
  const out: ConfigLeaf[] = [];
  walk(configSchema as unknown as ZodNode, "", out);
  cached = out;
  return out;
}

/** The leaf at `path`, or undefined when the schema has no such key. */
export function configLeaf(path: string): ConfigLeaf | undefined {
  return configLeaves().find((leaf) => leaf.path === path);
}

/**
 * Turns a string from the environment or a flag into the value the schema expects for `kind`.
 * Strings that do not parse are passed through unchanged, so the schema reports them with its
 * own message ("expected number, received string").
 */
export function coerceLeaf(raw: string, kind: LeafKind): unknown {
  switch (kind) {
    case "number":
      return raw.trim() === "" || Number.isNaN(Number(raw)) ? raw : Number(raw);
    case "duration":
      // A bare number is milliseconds (the schema's number form); `30s` stays a string.
      return /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : raw.trim();
    case "boolean":
      return /^(true|1|yes|on)$/i.test(raw.trim())
        ? true
        : /^(false|0|no|off)$/i.test(raw.trim())
          ? false
          : raw;
    case "list":
      return raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case "map": {
      const entries = raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map((pair) => {
          const eq = pair.indexOf("=");
          return eq < 0 ? [pair, ""] : [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
        });
      return Object.fromEntries(entries);
    }
    default:
      return raw;
  }
}

/** The outcome of {@link parseLeafValue}: the validated value, or why the text is not one. */
export type LeafValue = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * Validates one textual value (a CLI flag) for the config key `path` with that key's own schema,
 * the same one that checks config.yaml and the environment, so a flag accepts exactly what the
 * key accepts. Durations come back in milliseconds.
 *
 * @throws Error when `path` is not a key of the schema (a programming error, not user input).
 */
export function parseLeafValue(path: string, raw: string): LeafValue {
  const leaf = configLeaf(path);
  if (!leaf) throw new Error(`no config key ${path}`);
  const result = leaf.schema.safeParse(coerceLeaf(raw, leaf.kind));
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problem: result.error.issues.map((issue) => issue.message).join("; ") };
}

import { ThreadlineError } from "../errors.js";

/**
 * The inputs of a saver call, parsed and validated in one place for every Threadline saver: the
 * ids of `config.configurable` (thread_id, checkpoint_ns, checkpoint_id), `list`'s limit and
 * metadata filter. Numbers are accepted as ids (as LangGraph's own savers stringify them);
 * anything else that is not a string is INVALID_INPUT, and so is any id Postgres could not hold
 * exactly (see {@link ID_MAX_BYTES}).
 */

/**
 * Longest id accepted, in UTF-8 bytes. Longer ids fail with INVALID_INPUT instead of reaching
 * Postgres (where a multi-megabyte key fails the btree index as DB_ERROR).
 */
export const ID_MAX_BYTES = {
  thread_id: 512,
  checkpoint_id: 512,
  checkpoint_ns: 1024,
} as const;

/** Deepest metadata filter `list` accepts (objects and arrays nested). */
export const FILTER_MAX_DEPTH = 32;

type IdField = keyof typeof ID_MAX_BYTES;

/** A lone (unpaired) UTF-16 surrogate: UTF-8 cannot encode it, so Postgres would store U+FFFD. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Refuses ids that Postgres would not store as given: a lone surrogate (`"a\ud800b"`,
 * `"a\udc00b"` and `"a\ufffdb"` would all become the same thread), NUL (text cannot hold it),
 * and ids longer than {@link ID_MAX_BYTES}.
 */
function checkId(value: string, field: IdField): string {
  const max = ID_MAX_BYTES[field];
  // Three UTF-8 bytes per UTF-16 unit at most: short strings need no byte count.
  if (value.length * 3 > max && Buffer.byteLength(value, "utf8") > max) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `config.configurable.${field} is ${Buffer.byteLength(value, "utf8")} bytes long; at most ${max} bytes (UTF-8) are accepted`,
    );
  }
  if (LONE_SURROGATE.test(value)) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `config.configurable.${field} contains an unpaired UTF-16 surrogate, which UTF-8 (and Postgres) cannot store: use well-formed Unicode`,
    );
  }
  if (value.includes("\u0000")) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `config.configurable.${field} contains a NUL character, which Postgres text cannot store`,
    );
  }
  return value;
}

/** A `configurable` id: undefined when absent or empty, INVALID_INPUT when required. */
export function asId(value: unknown, field: IdField, required: true): string;
export function asId(value: unknown, field: IdField, required: false): string | undefined;
export function asId(value: unknown, field: IdField, required: boolean): string | undefined {
  if (value === undefined || value === null || value === "") {
    if (required) {
      throw new ThreadlineError(
        "INVALID_INPUT",
        `config.configurable.${field} is required (e.g. { configurable: { thread_id: "my-thread" } })`,
      );
    }
    return undefined;
  }
  if (typeof value === "string") return checkId(value, field);
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw new ThreadlineError(
    "INVALID_INPUT",
    `config.configurable.${field} must be a string, got ${Array.isArray(value) ? "array" : typeof value}`,
  );
}

/** `checkpoint_ns`: "" when absent. */
export function asNamespace(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return checkId(value, "checkpoint_ns");
  throw new ThreadlineError("INVALID_INPUT", "config.configurable.checkpoint_ns must be a string");
}

/** A put's `checkpoint.id`: a non-empty string, held to the checkpoint_id rules. */
export function asCheckpointId(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "") {
    throw new ThreadlineError("INVALID_INPUT", `${what}: checkpoint.id must be a non-empty string`);
  }
  return checkId(value, "checkpoint_id");
}

/**
 * `list`'s `limit`: undefined when absent; otherwise a number whose integer part is a safe
 * integer (negative counts as 0). `1e20` or `NaN` are INVALID_INPUT, not a database error.
 */
export function asLimit(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === "number" ? Math.trunc(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `list: limit must be an integer up to ${Number.MAX_SAFE_INTEGER}, got ${typeof value === "number" ? String(value) : typeof value}`,
    );
  }
  return Math.max(0, n);
}

/**
 * Why `value` cannot be stored as JSON, or undefined: a function, Symbol or BigInt (the default
 * serializer would drop the first two and garble the third), or nesting deeper than `maxDepth`.
 * `toJSON` is applied as JSON.stringify applies it, so LangChain messages are checked as stored.
 */
export function unstorable(value: unknown, maxDepth: number, root = "value"): string | undefined {
  const seen = new Set<object>();
  const visit = (v: unknown, path: string, depth: number): string | undefined => {
    switch (typeof v) {
      case "function":
        return `${path} is a function`;
      case "symbol":
        return `${path} is a Symbol`;
      case "bigint":
        return `${path} is a BigInt (store it as a string or number)`;
      case "object":
        break;
      default:
        return undefined;
    }
    if (v === null || ArrayBuffer.isView(v)) return undefined;
    if (depth > maxDepth) return `${path} is nested deeper than ${maxDepth} levels`;
    // A cycle is the serializer's business (it has its own handling); visit each object once.
    if (seen.has(v)) return undefined;
    seen.add(v);
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function" && !(v instanceof Date)) {
      const json: unknown = (toJSON as () => unknown).call(v);
      if (json !== v) return visit(json, path, depth);
    }
    if (v instanceof Map) {
      for (const [k, item] of v) {
        const problem = visit(item, `${path}.get(${String(k)})`, depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    if (v instanceof Set) {
      for (const item of v) {
        const problem = visit(item, `${path}[...]`, depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const problem = visit(v[i], `${path}[${i}]`, depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    for (const key of Object.keys(v)) {
      const problem = visit((v as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
  return visit(value, root, 0);
}

/** Refuses a value the serializer could not store faithfully (see {@link unstorable}). */
export function assertStorable(value: unknown, what: string, root: string): void {
  const problem = unstorable(value, 10_000, root);
  if (problem !== undefined) {
    throw new ThreadlineError(
      "INVALID_INPUT",
      `${what}: ${problem}; checkpoints hold JSON-like data only, so it would not read back as put`,
    );
  }
}

/**
 * `list`'s metadata filter as the JSON text of a `@>` containment, or undefined when it has no
 * keys. A filter nested deeper than {@link FILTER_MAX_DEPTH}, or holding a BigInt, function or
 * Symbol, is INVALID_INPUT.
 */
export function filterJson(filter: unknown): string | undefined {
  if (filter === undefined || filter === null) return undefined;
  if (typeof filter !== "object" || Array.isArray(filter)) {
    throw new ThreadlineError("INVALID_INPUT", "list: filter must be an object of metadata keys");
  }
  if (Object.keys(filter).length === 0) return undefined;
  const problem = unstorable(filter, FILTER_MAX_DEPTH, "filter");
  if (problem !== undefined) throw new ThreadlineError("INVALID_INPUT", `list: ${problem}`);
  return JSON.stringify(filter);
}

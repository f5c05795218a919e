import * as messages from "@langchain/core/messages";

/**
 * A synchronous decoder for the JSON that LangGraph's JsonPlusSerializer writes, for the common
 * case: plain JSON plus LangChain messages (`{lc: 1, type: "constructor", id: ["langchain_core",
 * "messages", Name], kwargs}`). It builds the same objects as `@langchain/core/load` does
 * (`new Class(mapKeys(kwargs, keyFromJson, aliases))`) without its per-object
 * stringify-and-reparse and promise chains, which dominate read latency (~10x slower).
 *
 * Anything else (lc:2 records such as Set/Map/undefined, secrets, escaped objects, other
 * namespaces, deep nesting) returns {@link FALLBACK}, and the caller uses the serializer.
 */
export const FALLBACK: unique symbol = Symbol("threadline.fallback");

const MAX_DEPTH = 50;
const SLOW_MARKERS = ['"lc":2', '"__lc_escaped__"', '"secret"', '"not_implemented"'];
const registry = messages as unknown as Record<string, unknown>;
const aliasCache = new Map<unknown, Record<string, string>>();

class Fallback extends Error {}

// Same as @langchain/core/load/map_keys (not exported by the package).
const SEPARATORS = /[-_\s]+/g;
function camelCase(key: string): string {
  const trimmed = key.trim();
  if (!/[-_\s]/.test(trimmed)) return trimmed;
  return trimmed
    .replace(SEPARATORS, "_")
    .toLowerCase()
    .replace(/_+([a-z0-9])/g, (_m, char: string) => char.toUpperCase());
}

/** Message kwargs keys are a handful of names (content, additional_kwargs, ...), seen per message. */
const camelMemo = new Map<string, string>();
const CAMEL_MEMO_MAX = 512;
function camelKey(key: string): string {
  let out = camelMemo.get(key);
  if (out === undefined) {
    out = camelCase(key);
    if (camelMemo.size < CAMEL_MEMO_MAX) camelMemo.set(key, out);
  }
  return out;
}

function invertedAliases(ctor: { prototype?: unknown }): Record<string, string> {
  let cached = aliasCache.get(ctor);
  if (!cached) {
    const aliases: Record<string, string> = {};
    for (
      let current: unknown = ctor;
      current && (current as { prototype?: unknown }).prototype;
      current = Object.getPrototypeOf(current)
    ) {
      Object.assign(
        aliases,
        Reflect.get((current as { prototype: object }).prototype, "lc_aliases"),
      );
    }
    cached = Object.fromEntries(Object.entries(aliases).map(([k, v]) => [v, k]));
    aliasCache.set(ctor, cached);
  }
  return cached;
}

/**
 * The value with its LangChain messages built. Objects are walked with for-in over own keys
 * (what Object.entries returns for a parsed object, without its array of pairs), and a message's
 * kwargs are revived straight into the constructor's fields: one object per message instead of a
 * revived copy and then the fields. A `__proto__` key never reaches the fields, as before (it
 * set the copy's prototype instead of a property).
 */
function revive(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new Fallback();
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = revive(value[i], depth + 1);
    return out;
  }
  const record = value as Record<string, unknown>;
  if (record.lc !== undefined && "type" in record && "id" in record) {
    if (record.lc !== 1 || record.type !== "constructor" || !("kwargs" in record))
      throw new Fallback();
    const id = record.id;
    if (
      !Array.isArray(id) ||
      id.length !== 3 ||
      id[0] !== "langchain_core" ||
      id[1] !== "messages"
    ) {
      throw new Fallback();
    }
    const name = id[2] as string;
    const ctor = registry[name];
    if (typeof ctor !== "function") throw new Fallback();
    const aliases = invertedAliases(ctor);
    const raw = record.kwargs;
    const fields: Record<string, unknown> = {};
    if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) {
      if (depth + 1 > MAX_DEPTH) throw new Fallback();
      const kwargs = raw as Record<string, unknown>;
      for (const key in kwargs) {
        if (!Object.hasOwn(kwargs, key) || key === "__proto__") continue;
        fields[aliases[key] || camelKey(key)] = revive(kwargs[key], depth + 2);
      }
    } else {
      const kwargs = revive(raw, depth + 1) as Record<string, unknown>;
      for (const key in kwargs)
        if (Object.hasOwn(kwargs, key)) fields[aliases[key] || camelKey(key)] = kwargs[key];
    }
    return new (ctor as new (fields: Record<string, unknown>) => unknown)(fields);
  }
  const out: Record<string, unknown> = {};
  for (const key in record)
    if (Object.hasOwn(record, key)) out[key] = revive(record[key], depth + 1);
  return out;
}

/** Decodes serializer JSON text, or returns FALLBACK when only the serializer can. */
export function fastDecode(text: string): unknown {
  for (const marker of SLOW_MARKERS) if (text.includes(marker)) return FALLBACK;
  try {
    return revive(JSON.parse(text), 0);
  } catch (err) {
    if (err instanceof Fallback) return FALLBACK;
    throw err;
  }
}

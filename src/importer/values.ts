import { ThreadlineError } from "../errors.js";

/**
 * Conversions of source values to what LangGraph JS and its `JsonPlusSerializer` accept:
 * LangChain ids, Python markers, channel versions, metadata, and the byte encodings the Redis
 * savers used. Everything here is pure so it can be unit tested without Redis or Postgres.
 */

/** Counts of convertible Python-isms met while normalising one record (reported, not fatal). */
export type ValueFlags = Map<string, number>;

/** Adds one occurrence of `flag`. */
export function addFlag(flags: ValueFlags, flag: string, n = 1): void {
  flags.set(flag, (flags.get(flag) ?? 0) + n);
}

/** A value that cannot become a LangGraph JS value (pickle, Python-only class, corrupt bytes). */
export function unsupported(
  reason: string,
  details: Record<string, unknown> = {},
): ThreadlineError {
  return new ThreadlineError("IMPORT_RECORD_INVALID", reason, { details });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** The JS serializer's record for a `Uint8Array` (what `JsonPlusSerializer` itself writes). */
function uint8Record(bytes: Uint8Array): Record<string, unknown> {
  return {
    lc: 2,
    type: "constructor",
    id: ["Uint8Array"],
    method: "from",
    args: [Array.from(bytes)],
    kwargs: {},
  };
}

/** lc:2 constructor ids the JS serializer revives itself (written by JS savers). */
const JS_LC2_IDS = new Set(["Set", "Map", "RegExp", "Error", "Uint8Array"]);

/**
 * Rewrites a Python `lc:2` constructor record to its JS equivalent where one exists: sets become
 * JS `Set` records, datetimes/UUIDs/decimals/paths their string form, tuples and deques arrays.
 * Anything else (Pydantic models, dataclasses, enums) has no JS class to revive into.
 */
function convertPythonLc2(obj: Record<string, unknown>, flags: ValueFlags): unknown {
  const id = obj.id as unknown[];
  const path = id.join(".");
  const args = Array.isArray(obj.args) ? obj.args : [];
  const first: unknown = args[0];
  switch (path) {
    case "builtins.set":
    case "builtins.frozenset":
      addFlag(flags, "python-set");
      return {
        lc: 2,
        type: "constructor",
        id: ["Set"],
        method: null,
        args: [Array.isArray(first) ? first.map((x) => normalizeValue(x, flags)) : []],
        kwargs: {},
      };
    case "builtins.tuple":
    case "collections.deque":
      addFlag(flags, "python-sequence");
      return Array.isArray(first) ? first.map((x) => normalizeValue(x, flags)) : [];
    case "datetime.datetime":
    case "datetime.date":
    case "datetime.time":
    case "uuid.UUID":
    case "decimal.Decimal":
    case "pathlib.Path":
    case "pathlib.PosixPath":
    case "zoneinfo.ZoneInfo":
      if (typeof first === "string") {
        addFlag(flags, "python-scalar");
        return first;
      }
      break;
  }
  throw unsupported(`Python-only object ${path} has no LangGraph JS equivalent`, {
    pythonType: path,
  });
}

const PY_MESSAGE_PREFIX = ["langchain", "schema", "messages"];

/**
 * Normalises a decoded source value (JSON-shaped) into JSON that the JS `JsonPlusSerializer`
 * revives: Python LangChain ids `["langchain","schema","messages",X]` become
 * `["langchain_core","messages",X]` (JS `load()` rejects the Python namespace), and the Python
 * Redis serializer's markers (`__interrupt__`, `__send__`, `__delta_snapshot__`, `__bytes__`)
 * become their JS forms. Throws IMPORT_RECORD_INVALID for values with no JS form.
 */
export function normalizeValue(value: unknown, flags: ValueFlags): unknown {
  // Copy-on-write: a value that needs no conversion (every JS-saver value, most of a Python one)
  // comes back as the same object, so the importer allocates only what it changes.
  if (Array.isArray(value)) return normalizeArray(value, flags);
  if (value instanceof Uint8Array) {
    addFlag(flags, "bytes");
    return uint8Record(value);
  }
  if (!isPlainObject(value)) return value;
  if (value.lc === 1 && Array.isArray(value.id)) {
    if (value.type === "not_implemented") {
      throw unsupported(
        `value ${value.id.join(".")} was not serializable in the source (lc "not_implemented")`,
      );
    }
    if (value.type === "secret") throw unsupported("secret references cannot be imported");
    if (value.type === "constructor") {
      const id = value.id as unknown[];
      let newId = id;
      if (id.length === 4 && PY_MESSAGE_PREFIX.every((p, i) => id[i] === p)) {
        newId = ["langchain_core", "messages", id[3]];
        addFlag(flags, "python-lc-id");
      }
      const kwargs = isPlainObject(value.kwargs)
        ? normalizeObject(value.kwargs, flags)
        : value.kwargs;
      if (newId === id && kwargs === value.kwargs) return value;
      const out: Record<string, unknown> = { ...value, id: newId };
      if (isPlainObject(value.kwargs)) out.kwargs = kwargs;
      return out;
    }
  }
  if (value.lc === 2 && value.type === "constructor" && Array.isArray(value.id)) {
    if (value.id.length === 1 && JS_LC2_IDS.has(String(value.id[0]))) return value;
    return convertPythonLc2(value, flags);
  }
  if (value.__interrupt__ === true) {
    addFlag(flags, "interrupt");
    const out: Record<string, unknown> = { value: normalizeValue(value.value, flags) };
    if (typeof value.id === "string") out.id = value.id;
    return out;
  }
  if (value.__send__ === true) {
    addFlag(flags, "send");
    // JS Send serializes as { node, args } and is recognised by that shape when loaded.
    return { node: value.node, args: normalizeValue(value.arg ?? value.args, flags) };
  }
  if (value.__delta_snapshot__ === true) {
    addFlag(flags, "delta-snapshot");
    return { lc: 2, type: "delta_snapshot", value: normalizeValue(value.value, flags) };
  }
  if (typeof value.__bytes__ === "string" && Object.keys(value).length === 1) {
    addFlag(flags, "bytes");
    return uint8Record(decodeBase64Strict(value.__bytes__));
  }
  return normalizeObject(value, flags);
}

/** Normalises every element; the same array when none changed. */
function normalizeArray(arr: unknown[], flags: ValueFlags): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    const n = normalizeValue(v, flags);
    if (n !== v && out === undefined) out = arr.slice(0, i);
    if (out !== undefined) out.push(n);
  }
  return out ?? arr;
}

/** Normalises every property; the same object when none changed. */
function normalizeObject(obj: Record<string, unknown>, flags: ValueFlags): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  const keys = Object.keys(obj);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = obj[k];
    const n = normalizeValue(v, flags);
    if (n !== v && out === undefined) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]!] = obj[keys[j]!];
    }
    if (out !== undefined) out[k] = n;
  }
  return out ?? obj;
}

/**
 * A channel version as the integer LangGraph JS expects. Python writes
 * `"00000000000000000000000000000003.0.7312..."`; JS `BaseCheckpointSaver.getNextVersion` throws
 * on string versions ("Please override this method to use string versions"), so every version
 * becomes `int(v.split(".")[0])`. Returns undefined when the value is not a version.
 */
export function toIntVersion(version: unknown): number | undefined {
  if (typeof version === "number")
    return Number.isFinite(version) ? Math.trunc(version) : undefined;
  if (typeof version !== "string") return undefined;
  // The digits before the first ".", read in place: a split and a regex per version were a
  // visible part of an import (every channel of every checkpoint has one).
  const end = version.indexOf(".");
  const stop = end < 0 ? version.length : end;
  const negative = version.charCodeAt(0) === 45; // "-"
  let i = negative ? 1 : 0;
  if (i >= stop) return undefined;
  let n = 0;
  for (; i < stop; i++) {
    const d = version.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  if (!Number.isSafeInteger(n)) return undefined;
  return negative ? -n : n;
}

/** Converts every version of a `channel_versions` map; throws on a value that is not a version. */
export function convertVersions(versions: unknown, what: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isPlainObject(versions)) return out;
  for (const [channel, v] of Object.entries(versions)) {
    const n = toIntVersion(v);
    if (n === undefined)
      throw unsupported(
        `${what}: version ${JSON.stringify(v)} of channel ${channel} is not a version`,
      );
    out[channel] = n;
  }
  return out;
}

/** Converts `versions_seen` (node -> channel -> version). */
export function convertVersionsSeen(seen: unknown): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  if (!isPlainObject(seen)) return out;
  for (const [node, versions] of Object.entries(seen))
    out[node] = convertVersions(versions, `versions_seen.${node}`);
  return out;
}

/** Strips NUL characters from every string (Postgres JSONB rejects `\u0000`, SQLSTATE 22P05). */
export function stripNul(value: unknown): unknown {
  // Copy-on-write, as normalizeValue: NULs are rare, so this is nearly always a read-only walk.
  if (typeof value === "string") return value.includes("\0") ? value.replace(/\0/g, "") : value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const n = stripNul(v);
      if (n !== v && out === undefined) out = value.slice(0, i);
      if (out !== undefined) out.push(n);
    }
    return out ?? value;
  }
  if (isPlainObject(value)) {
    let out: Record<string, unknown> | undefined;
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = value[k];
      const sk = k.includes("\0") ? k.replace(/\0/g, "") : k;
      const n = stripNul(v);
      if ((n !== v || sk !== k) && out === undefined) {
        out = {};
        for (let j = 0; j < i; j++) out[keys[j]!] = value[keys[j]!];
      }
      if (out !== undefined) out[sk] = n;
    }
    return out ?? value;
  }
  return value;
}

/**
 * Checkpoint metadata as an object: the Python full saver stores it as a JSON *string*, the
 * others as an object. `writes` is dropped (LangGraph 1.x no longer records it) and NULs are
 * stripped so the JSONB insert cannot fail.
 */
export function parseMetadata(raw: unknown, flags: ValueFlags): Record<string, unknown> {
  let meta: unknown = raw;
  if (typeof raw === "string") {
    try {
      meta = JSON.parse(raw);
    } catch (err) {
      throw unsupported("metadata is not valid JSON", { cause: (err as Error).message });
    }
  }
  if (meta === null || meta === undefined) return {};
  if (!isPlainObject(meta)) throw unsupported("metadata is not an object");
  const { writes: _writes, ...rest } = meta;
  return stripNul(normalizeValue(rest, flags)) as Record<string, unknown>;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes base64, refusing anything that is not canonical base64 (Buffer.from is lenient). */
export function decodeBase64Strict(text: string): Uint8Array {
  if (!BASE64_RE.test(text)) throw unsupported("value is neither JSON nor base64");
  return new Uint8Array(Buffer.from(text, "base64"));
}

const COMMA_BYTES_RE = /^\d{1,3}(?:,\d{1,3})*$/;

/** True when `text` is the comma-separated decimal bytes `checkpoint-redis` stored by mistake. */
export function isCommaBytes(text: string): boolean {
  return COMMA_BYTES_RE.test(text);
}

/**
 * Decodes `checkpoint-redis`'s values: ioredis wrote `String(uint8Array)`, i.e. decimal bytes
 * joined by commas ("123,34,118,..."), instead of the bytes.
 */
export function decodeCommaBytes(text: string): Uint8Array {
  if (!isCommaBytes(text)) throw unsupported("value is not comma-separated bytes");
  const parts = text.split(",");
  const out = new Uint8Array(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const n = Number(parts[i]);
    if (n > 255) throw unsupported("comma-separated byte out of range");
    out[i] = n;
  }
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Strict UTF-8 decoding (invalid bytes throw instead of turning into U+FFFD). */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw unsupported("value is not valid UTF-8 text");
  }
}

/** Parses JSON text, turning a syntax error into IMPORT_RECORD_INVALID. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw unsupported(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The zero-UUID Python's langgraph-checkpoint-redis stores for "no id". */
export const ZERO_ID = "00000000-0000-0000-0000-000000000000";
/** The Python saver's placeholder for the root namespace. */
export const EMPTY_NS = "__empty__";

/** The namespace as LangGraph uses it: `__empty__` (Python sentinel) means the root `""`. */
export function normalizeNs(ns: unknown): string {
  if (typeof ns !== "string" || ns === EMPTY_NS) return "";
  return ns;
}

/** An id or null: the zero-UUID sentinel and empty strings mean "none". */
export function normalizeId(id: unknown): string | null {
  if (typeof id !== "string" || id === "" || id === ZERO_ID) return null;
  return id;
}

/** Milliseconds since the epoch of an ISO timestamp or epoch-ms number, if it parses. */
export function toEpochMs(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  if (typeof value === "string" && value !== "") {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
  }
  return undefined;
}

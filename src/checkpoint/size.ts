/**
 * Estimates of the heap a cached value keeps alive, so caches can be bounded by bytes instead of
 * entries (one 900 KB message per thread made a 10 000-thread cache hold 9 GB). An estimate, not
 * a measurement: strings count 1 byte per character (2 when they hold characters beyond Latin-1,
 * as V8 stores them), a long string referenced twice in one value counts once (LangChain messages
 * keep their content in `lc_kwargs` too), and objects a fixed overhead per property.
 */

/** Sizes of array elements already measured, by identity: a message is measured once. */
const measured = new WeakMap<object, number>();

const OBJECT_OVERHEAD = 32;
const PROPERTY_OVERHEAD = 16;
const STRING_OVERHEAD = 16;
/** Strings shorter than this are not deduplicated (a Set lookup would cost more than it saves). */
const DEDUP_MIN = 1024;
const BEYOND_LATIN1 = /[\u0100-\uffff]/;
/** Nesting measured at most; deeper parts count as one object each. */
const MAX_DEPTH = 64;

function stringBytes(s: string, seen: Set<string>): number {
  if (s.length >= DEDUP_MIN) {
    if (seen.has(s)) return 8;
    seen.add(s);
  }
  return STRING_OVERHEAD + s.length * (s.length >= 64 && BEYOND_LATIN1.test(s) ? 2 : 1);
}

function valueBytes(
  value: unknown,
  seen: Set<string>,
  visiting: Set<object>,
  depth: number,
): number {
  switch (typeof value) {
    case "string":
      return stringBytes(value, seen);
    case "object":
      break;
    default:
      return 8;
  }
  if (value === null) return 8;
  if (ArrayBuffer.isView(value)) return OBJECT_OVERHEAD + value.byteLength;
  if (depth >= MAX_DEPTH || visiting.has(value)) return OBJECT_OVERHEAD;
  visiting.add(value);
  let n = OBJECT_OVERHEAD;
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) n += 8 + valueBytes(item, seen, visiting, depth + 1);
  } else if (value instanceof Map) {
    for (const [k, v] of value as Map<unknown, unknown>)
      n +=
        PROPERTY_OVERHEAD +
        valueBytes(k, seen, visiting, depth + 1) +
        valueBytes(v, seen, visiting, depth + 1);
  } else {
    for (const key of Object.keys(value)) {
      n +=
        PROPERTY_OVERHEAD +
        key.length +
        valueBytes((value as Record<string, unknown>)[key], seen, visiting, depth + 1);
    }
  }
  visiting.delete(value);
  return n;
}

/** About the bytes `value` keeps alive (objects measured once each, by identity). */
export function estimateBytes(value: unknown): number {
  if (value === null || typeof value !== "object")
    return valueBytes(value, new Set(), new Set(), 0);
  const known = measured.get(value);
  if (known !== undefined) return known;
  const n = valueBytes(value, new Set(), new Set(), 0);
  // Arrays are new at every step (reducers return new arrays); their elements are what repeats.
  if (!Array.isArray(value)) measured.set(value, n);
  return n;
}

/** About the bytes an array channel's elements keep alive, plus the array itself. */
export function estimateItemsBytes(items: readonly unknown[]): number {
  let n = OBJECT_OVERHEAD + 8 * items.length;
  for (const item of items) n += estimateBytes(item);
  return n;
}

/**
 * A synchronous encoder producing exactly the JSON that LangGraph's JsonPlusSerializer writes,
 * for the common case: plain JSON values and objects whose `toJSON()` returns plain JSON
 * (LangChain messages). JsonPlusSerializer is asynchronous and walks every value twice (a
 * circular-reference pass, then `JSON.stringify` with a replacer); here one `JSON.stringify`
 * with a replacer that gives up on anything JsonPlusSerializer would rewrite: `undefined`,
 * Set, Map, RegExp, Error, typed arrays, Send, class instances in general, and values JSON
 * cannot hold (functions, Symbols, BigInts: the codec refuses those). Circular values make
 * `JSON.stringify` throw. In every such case the result is undefined and the caller uses the
 * serializer itself.
 *
 * Being synchronous matters beyond its own cost: a put that does not await can send its
 * statement in the same promise job LangGraph called it from (see db/lease.ts).
 */
const GIVE_UP = new Error("threadline: not plain JSON");

function plainOnly(_key: string, value: unknown): unknown {
  if (value === undefined) throw GIVE_UP;
  const type = typeof value;
  if (type === "function" || type === "symbol") throw GIVE_UP;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) throw GIVE_UP;
  }
  return value;
}

/** JsonPlusSerializer's JSON text for `value`, or undefined when only the serializer can tell. */
export function fastEncode(value: unknown): string | undefined {
  try {
    return JSON.stringify(value, plainOnly);
  } catch {
    return undefined;
  }
}

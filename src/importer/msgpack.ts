import { Decoder, ExtensionCodec } from "@msgpack/msgpack";
import { unsupported } from "./values.js";

/**
 * Decoding of Python LangGraph's msgpack serialization (`JsonPlusSerializer.dumps_typed` ->
 * `("msgpack", bytes)`), used by the how-to hash saver with langgraph-checkpoint >= 2 and by
 * langgraph-checkpoint-redis writes that fell back to msgpack. The JS serializer has no msgpack
 * support, so values are turned into the JSON shapes it revives.
 */

/** ExtType codes of Python's jsonplus serializer. */
const EXT = {
  constructorSingleArg: 0,
  constructorPosArgs: 1,
  constructorKwArgs: 2,
  methodSingleArg: 3,
  pydanticV1: 4,
  pydanticV2: 5,
  numpy: 6,
  pandasFrame: 7,
  pandasSeries: 8,
} as const;

const LC_MESSAGES_MODULE = /^langchain_core\.messages(\.|$)/;

function stripNulls(dump: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(dump)) {
    if (v === null || v === undefined) continue;
    if (k === "example" && v === false) continue;
    out[k] = v;
  }
  return out;
}

function describe(payload: unknown): string {
  if (Array.isArray(payload) && typeof payload[0] === "string" && typeof payload[1] === "string") {
    return `${payload[0]}.${payload[1]}`;
  }
  return "unknown";
}

function decodePayload(data: Uint8Array, codec: ExtensionCodec): unknown[] {
  const payload = new Decoder({ extensionCodec: codec }).decode(data);
  if (!Array.isArray(payload)) throw unsupported("msgpack extension payload is not a tuple");
  return payload;
}

function buildCodec(): ExtensionCodec {
  const codec = new ExtensionCodec();
  const noEncode = () => null;
  const register = (type: number, decode: (payload: unknown[], type: number) => unknown) =>
    codec.register({
      type,
      encode: noEncode,
      decode: (data, extType) => decode(decodePayload(data, codec), extType),
    });

  // (module, name, arg): UUID, Decimal, enums, paths ... -> the single argument when it is a plain
  // scalar (UUID arrives as its hex string, Decimal as its string form).
  register(EXT.constructorSingleArg, (p) => {
    const [module, name, arg] = p;
    if (module === "uuid" && name === "UUID" && typeof arg === "string") return formatUuid(arg);
    if (typeof arg === "string" || typeof arg === "number" || typeof arg === "boolean") return arg;
    throw unsupported(`Python-only object ${describe(p)} has no LangGraph JS equivalent`, {
      pythonType: describe(p),
    });
  });
  // (module, name, args): set/frozenset/tuple/deque -> arrays or JS Set records; Send.
  register(EXT.constructorPosArgs, (p) => {
    const [module, name, args] = p;
    const path = `${String(module)}.${String(name)}`;
    const list: unknown[] = Array.isArray(args) ? args : [];
    if (path === "builtins.set" || path === "builtins.frozenset") {
      return {
        lc: 2,
        type: "constructor",
        id: ["Set"],
        method: null,
        args: [list[0] ?? []],
        kwargs: {},
      };
    }
    if (path === "builtins.tuple" || path === "collections.deque") return list[0] ?? [];
    if (path === "langgraph.types.Send") return { node: list[0], args: list[1] };
    throw unsupported(`Python-only object ${path} has no LangGraph JS equivalent`, {
      pythonType: path,
    });
  });
  // (module, name, kwargs): dataclasses. Interrupt and Send have JS shapes; others do not.
  register(EXT.constructorKwArgs, (p) => {
    const [module, name, kwargs] = p;
    const path = `${String(module)}.${String(name)}`;
    const kw = (kwargs ?? {}) as Record<string, unknown>;
    if (path === "langgraph.types.Interrupt") {
      return typeof kw.id === "string" ? { value: kw.value, id: kw.id } : { value: kw.value };
    }
    if (path === "langgraph.types.Send") return { node: kw.node, args: kw.arg ?? kw.args };
    throw unsupported(`Python-only object ${path} has no LangGraph JS equivalent`, {
      pythonType: path,
    });
  });
  // (module, name, arg, method): datetime.fromisoformat & co -> the ISO string.
  register(EXT.methodSingleArg, (p) => {
    const [, , arg] = p;
    if (typeof arg === "string") return arg;
    throw unsupported(`Python-only object ${describe(p)} has no LangGraph JS equivalent`, {
      pythonType: describe(p),
    });
  });
  // Pydantic models: LangChain messages become lc:1 constructor records JS load() revives.
  const pydantic = (p: unknown[]) => {
    const [module, name, dump] = p;
    if (typeof module === "string" && LC_MESSAGES_MODULE.test(module) && typeof name === "string") {
      return {
        lc: 1,
        type: "constructor",
        id: ["langchain_core", "messages", name],
        kwargs: stripNulls((dump ?? {}) as Record<string, unknown>),
      };
    }
    throw unsupported(`Pydantic model ${describe(p)} has no LangGraph JS equivalent`, {
      pythonType: describe(p),
    });
  };
  register(EXT.pydanticV1, pydantic);
  register(EXT.pydanticV2, pydantic);
  for (const type of [EXT.numpy, EXT.pandasFrame, EXT.pandasSeries]) {
    register(type, (p) => {
      throw unsupported(
        `Python-only object ${describe(p)} (msgpack ext ${type}) has no LangGraph JS equivalent`,
        {
          pythonType: describe(p),
        },
      );
    });
  }
  return codec;
}

function formatUuid(hex: string): string {
  if (/^[0-9a-f]{32}$/i.test(hex)) {
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  return hex;
}

const codec = buildCodec();

/**
 * Decodes Python jsonplus msgpack bytes into JSON-shaped values (messages as `lc:1` records with
 * JS ids). Throws IMPORT_RECORD_INVALID for corrupt bytes and Python-only objects.
 */
export function decodePythonMsgpack(bytes: Uint8Array): unknown {
  try {
    return new Decoder({ extensionCodec: codec }).decode(bytes);
  } catch (err) {
    if ((err as { code?: string }).code === "IMPORT_RECORD_INVALID") throw err;
    throw unsupported(`msgpack value cannot be decoded: ${(err as Error).message}`);
  }
}

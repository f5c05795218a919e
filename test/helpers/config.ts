import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { coerceLeaf, type ConfigLeaf } from "../../src/config/keys.js";
import { configSchema } from "../../src/config/schema.js";
import { tempDir } from "./tmp.js";

/** The value at a dotted path of a config tree. */
export function valueAt(tree: unknown, path: string): unknown {
  let node = tree;
  for (const part of path.split(".")) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** An empty config file, so a test sees defaults + env only. */
export function emptyConfigFile(): string {
  const file = join(tempDir("tl-config-"), "config.yaml");
  writeFileSync(file, "");
  return file;
}

const DEFAULTS = configSchema.parse({});

function enumValues(leaf: ConfigLeaf): string[] {
  let node = leaf.schema as unknown as {
    _zod: { def: { type: string; innerType?: unknown; entries?: Record<string, string> } };
  };
  while (node._zod.def.innerType) node = node._zod.def.innerType as typeof node;
  return node._zod.def.type === "enum" ? Object.values(node._zod.def.entries ?? {}) : [];
}

/**
 * A textual value (as an env variable or a flag would carry it) that the key accepts and that
 * differs from its default, derived from the key's own schema so that keys added later are
 * covered without editing the test. Returns the text and the value the key then holds.
 */
export function sampleFor(leaf: ConfigLeaf): { text: string; value: unknown } {
  const byDefault = valueAt(DEFAULTS, leaf.path);
  const candidates: string[] = [];
  switch (leaf.kind) {
    case "boolean":
      candidates.push(String(byDefault !== true));
      break;
    case "number": {
      const n = typeof byDefault === "number" ? byDefault : 1;
      candidates.push(String(n + 1), String(n - 1), "1", "0");
      break;
    }
    case "duration": {
      const n = typeof byDefault === "number" ? byDefault : 45_000;
      candidates.push(`${n + 1000}ms`, `${n * 2}`);
      break;
    }
    case "list":
      candidates.push("http://sample.example,http://other.example", "sample-value-0123456789");
      break;
    case "map":
      candidates.push("sample=/srv/graphs/sample.mjs:graph");
      break;
    default:
      candidates.push(
        ...enumValues(leaf).filter((v) => v !== byDefault),
        "sample_value_0123456789",
        "http://sample.example/",
      );
  }
  for (const text of candidates) {
    const parsed = leaf.schema.safeParse(coerceLeaf(text, leaf.kind));
    if (parsed.success && JSON.stringify(parsed.data) !== JSON.stringify(byDefault))
      return { text, value: parsed.data };
  }
  throw new Error(`no sample value for ${leaf.path}: add a candidate for its kind ${leaf.kind}`);
}

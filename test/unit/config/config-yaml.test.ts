import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { configLeaves } from "../../../src/config/keys.js";
import { loadConfig } from "../../../src/config/load.js";
import { configSchema } from "../../../src/config/schema.js";

const CONFIG_YAML = fileURLToPath(new URL("../../../config.yaml", import.meta.url));

/**
 * Key paths written in config.yaml, set or commented out (`# url: ...`), by indentation. Prose
 * comments that happen to look like `word: ...` add harmless extra paths.
 */
function yamlPaths(text: string): Set<string> {
  const paths = new Set<string>();
  const stack: Array<{ indent: number; key: string }> = [];
  for (const line of text.split("\n")) {
    const m = /^(\s*)(?:#\s?)?([A-Za-z][A-Za-z0-9]*):(\s|$)/.exec(line);
    if (!m) continue;
    const indent = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
    stack.push({ indent, key: m[2]! });
    paths.add(stack.map((s) => s.key).join("."));
  }
  return paths;
}

describe("config.yaml", () => {
  it("documents every key of the config schema (set, or commented out when it has no default)", () => {
    const documented = yamlPaths(readFileSync(CONFIG_YAML, "utf8"));
    // The same derivation that gives every key its environment variable.
    const all = configLeaves().map((leaf) => leaf.path);
    expect(all.length).toBeGreaterThan(60);
    expect(all.filter((path) => !documented.has(path))).toEqual([]);
  });

  it("puts a comment above every key", () => {
    const lines = readFileSync(CONFIG_YAML, "utf8").split("\n");
    const undocumented = lines.flatMap((line, i) => {
      if (!/^\s*[A-Za-z][A-Za-z0-9]*:\s*\S/.test(line)) return []; // sections have no value
      return lines[i - 1]?.trim().startsWith("#") ? [] : [line.trim()];
    });
    expect(undocumented).toEqual([]);
  });

  it("loads as shipped, and its values equal the schema defaults", () => {
    const shipped = loadConfig(CONFIG_YAML, { env: {} });
    expect(shipped).toEqual(configSchema.parse({}));
  });
});

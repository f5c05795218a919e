import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * Files a comment may name that are not in the repository on purpose: placeholders in examples,
 * build output, and applied migrations, which are immutable (editing one changes its checksum).
 */
const ALLOWED = new Map<string, string>([
  ["./path.ts", "placeholder in the langgraph.json example"],
  ["dist/index.js", "an installed package's entry, not ours"],
  ["dist/src/cli.js", "the built CLI (npm run build writes it; never committed)"],
  ["sql/migrations/0004_cleanup.sql INTERFACE.md", "applied migration: immutable"],
]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules" || name === "dist") return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx|mjs|sql)$/.test(name) ? [path] : [];
  });
}

const COMMENT = /^\s*(?:\/\/|\/\*\*?|\*|--)|\s\/\/\s/;
const PATH =
  /(?<![\w@.-])(?:\.{1,2}\/)?[A-Za-z0-9_-][A-Za-z0-9_./-]*\.(?:md|ts|js|sql|json|yaml|mjs|txt)\b/g;

describe("comments", () => {
  it("name only files that exist in the repository", () => {
    const missing: string[] = [];
    for (const file of ["src", "test", "sql", "bench"].flatMap((d) => sourceFiles(join(ROOT, d)))) {
      const rel = relative(ROOT, file);
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (!COMMENT.test(line) || /^\s*(import|export) /.test(line)) return;
          for (const [ref] of line.matchAll(PATH)) {
            if (ALLOWED.has(ref) || ALLOWED.has(`${rel} ${ref}`)) continue;
            // No slash and not a document: a module name in prose (`saver.ts`), not a path.
            if (!ref.includes("/") && !ref.endsWith(".md")) continue;
            const candidates = [ref, ref.replace(/\.js$/, ".ts")].flatMap((r) => [
              join(ROOT, r),
              join(dirname(file), r),
              join(ROOT, "src", r),
            ]);
            // Inside the repository: /work/shared/... exists on a developer's machine only.
            const inRepo = (c: string) => !relative(ROOT, c).startsWith("..") && existsSync(c);
            if (!candidates.some(inRepo)) missing.push(`${rel}:${i + 1} ${ref}`);
          }
        });
    }
    expect(missing).toEqual([]);
  });
});

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

// Module customization hooks (they run on a thread of their own): every resolved URL is appended
// to a file, after the other hooks (tsx's) have resolved it.
const HOOKS = `
import { appendFileSync } from "node:fs";
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(out, result.url + "\\n");
  return result;
}
`;
const REGISTER = `
import { register } from "node:module";
register(new URL("./hooks.mjs", import.meta.url), { data: { out: process.env.RECORD_OUT } });
`;

/**
 * The npm packages a fresh Node process loads while importing `entry` (a path or a bare
 * specifier resolved from `cwd`), by package name (`pg`, `@langchain/core`, ...): every URL the
 * ES module resolver returned, plus every CommonJS module in `require.cache` (those loaded by
 * `require()` inside CommonJS packages do not pass the resolve hook). With `tsx`,
 * TypeScript sources are loaded through tsx's hooks; tsx itself is left out of the result.
 */
export async function packagesLoadedBy(
  entry: string,
  options: { cwd: string; tsx?: boolean },
): Promise<Set<string>> {
  const dir = mkdtempSync(join(tmpdir(), "tl-graph-"));
  try {
    const out = join(dir, "resolved.txt");
    writeFileSync(out, "");
    writeFileSync(join(dir, "hooks.mjs"), HOOKS);
    writeFileSync(join(dir, "register.mjs"), REGISTER);
    const target = entry.startsWith("/") ? pathToFileURL(entry).href : entry;
    await run(
      process.execPath,
      [
        ...(options.tsx ? ["--import", "tsx"] : []),
        "--import",
        pathToFileURL(join(dir, "register.mjs")).href,
        "--input-type=module",
        "-e",
        // CommonJS modules loaded by require() never reach the resolve hook: add require.cache.
        `await import(${JSON.stringify(target)});
         const { createRequire } = await import("node:module");
         const { appendFileSync } = await import("node:fs");
         const { pathToFileURL } = await import("node:url");
         const cached = Object.keys(createRequire(import.meta.url).cache);
         appendFileSync(process.env.RECORD_OUT, cached.map((f) => pathToFileURL(f).href + "\\n").join(""));`,
      ],
      { cwd: options.cwd, env: { ...process.env, RECORD_OUT: out } },
    );
    const packages = new Set<string>();
    for (const url of readFileSync(out, "utf8").split("\n")) {
      const name = packageOf(url);
      if (name && !(options.tsx && (name === "tsx" || name === "esbuild"))) packages.add(name);
    }
    return packages;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The package a `file:` URL belongs to: the segment after its last `node_modules/`. */
export function packageOf(url: string): string | undefined {
  const at = url.lastIndexOf("/node_modules/");
  if (!url.startsWith("file:") || at < 0) return undefined;
  const [first, second] = url.slice(at + "/node_modules/".length).split("/");
  if (!first) return undefined;
  return first.startsWith("@") && second ? `${first}/${second}` : first;
}

/** What the root entry `threadline` must not load (the service's packages). */
export const SERVICE_PACKAGES = [
  "express",
  "helmet",
  "express-rate-limit",
  "pino-http",
  "ai",
  "@langchain/openai",
  "openai",
  "node-cron",
  "@electric-sql/pglite",
  "@electric-sql/pglite-socket",
  "prom-client",
  "ioredis",
  "cli-progress",
  "commander",
] as const;

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package root (the folder holding package.json and sql/), found by walking up from this
 * module, so the same code works from src/ (tsx, vitest) and from dist/src/ (the build).
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "sql"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("threadline: cannot find the package root (sql/ folder)");
    dir = parent;
  }
}

/** The `version` of Threadline's package.json (what `threadline --version` prints). */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as {
    version?: unknown;
  };
  if (typeof manifest.version !== "string")
    throw new Error("threadline: package.json has no version");
  return manifest.version;
}

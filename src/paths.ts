import { existsSync } from "node:fs";
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

import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConsoleMessage, Page } from "playwright-core";
import { build } from "vite";
import { packageRoot } from "../../src/paths.js";

/** Screenshots of the browser tests (gitignored). */
export const RESULTS_DIR = join(packageRoot(), "test-results");

/** Builds the page exactly as `npm run build` does, into a fresh folder. */
export async function buildPage(): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), "threadline-page-"));
  // Vitest sets NODE_ENV=test, which would make Vite bundle React's development build.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = "production";
  try {
    await build({
      configFile: join(packageRoot(), "src", "web", "vite.config.ts"),
      mode: "production",
      build: { outDir, emptyOutDir: true },
      logLevel: "warn",
    });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  await mkdir(RESULTS_DIR, { recursive: true });
  return outDir;
}

/** Collects every console error and uncaught page error, to be asserted empty. */
export function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() === "error") problems.push(`console.error: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  return problems;
}

export function screenshot(page: Page, name: string): Promise<Buffer> {
  return page.screenshot({ path: join(RESULTS_DIR, `${name}.png`), fullPage: false });
}

/**
 * The few browser globals the tests read inside `page.evaluate` (the test project compiles
 * without the DOM library). Cast `globalThis` to it inside the evaluated function.
 */
export interface PageWindow {
  document: {
    documentElement: { scrollWidth: number; clientWidth: number };
    activeElement: { id: string } | null;
    querySelector(selector: string): PageNode | null;
  };
  sessionStorage: { getItem(key: string): string | null };
  localStorage: { length: number };
  MutationObserver: new (callback: () => void) => {
    observe(node: PageNode, options: Record<string, boolean>): void;
  };
  __replyLengths?: Set<number>;
}

/** An element as the tests see it in `page.evaluate`. */
export interface PageNode {
  textContent: string | null;
  querySelectorAll(selector: string): ArrayLike<PageNode>;
}

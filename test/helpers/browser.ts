import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

/** Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it when missing). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Whether the browser is here; with CI=true a missing one fails the run instead of skipping. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  if (process.env.CI === "true")
    throw new Error(
      `CI=true but ${CHROMIUM_PATH} is missing: apt-get update && apt-get install -y chromium`,
    );
  return false;
}

/** Viewport of the desktop pages; the narrow test switches to a phone's. */
export const DESKTOP = { width: 1280, height: 800 };

/**
 * A headless Chromium on a fresh, empty profile directory (removed by close()), with the flags
 * this machine needs: no sandbox as root, no GPU, and no background traffic (the closed network
 * refuses it, and each refusal would be noise).
 */
export async function launchChromium(): Promise<{
  context: BrowserContext;
  close: () => Promise<void>;
}> {
  const profile = await mkdtemp(join(tmpdir(), "threadline-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    viewport: DESKTOP,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
      "--disable-quic",
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

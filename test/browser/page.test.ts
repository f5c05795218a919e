import { rm } from "node:fs/promises";
import pino from "pino";
import type pg from "pg";
import type { BrowserContext, Page } from "playwright-core";
import { startService, type RunningService } from "../../src/service/composition-root.js";
import { chromiumAvailable, launchChromium } from "../helpers/browser.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../helpers/db.js";
import { testConfig } from "../integration/http/helpers.js";
import { buildPage, screenshot, type PageWindow } from "./helpers.js";

const PHONE = { width: 390, height: 844 };
const KEY = "browser-key-0123456789abcdef";

// Outside CI a machine without Chromium skips these; with CI=true chromiumAvailable() throws.
const haveChromium = chromiumAvailable();

const messageBox = (page: Page) => page.getByRole("textbox", { name: /message/i });

async function eventually(check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!haveChromium)("the web page in Chromium", () => {
  const schema = uniqueSchema("web_page");
  let webRoot: string;
  let pool: pg.Pool;
  let service: RunningService;
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let page: Page;

  beforeAll(async () => {
    await requirePostgres();
    webRoot = await buildPage();
    pool = testPool(1);
    const config = testConfig(schema, {
      auth: { apiKeys: [KEY] },
      cleanup: { enabled: true, schedule: "* * * * * *", ttl: "7d" },
    });
    service = await startService(config, { logger: pino({ level: "silent" }), webRoot });
    browser = await launchChromium();
    page = await browser.context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await service?.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
    if (webRoot) await rm(webRoot, { recursive: true, force: true });
  });

  it("asks for the API key and keeps it in sessionStorage only", async () => {
    await page.goto(service.url);
    await page.getByLabel("API key").fill(KEY);
    await page.getByRole("button", { name: "Use key" }).click();
    await messageBox(page).waitFor();
    const stored = await page.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      return {
        session: w.sessionStorage.getItem("threadline.apiKey"),
        local: w.localStorage.length,
      };
    });
    expect(stored).toEqual({ session: KEY, local: 0 });
    await page.reload();
    await messageBox(page).waitFor();
    expect(await page.getByLabel("API key").count()).toBe(0);
  });

  it("shows the ops panel: database mode, pending writes, pool, last cleanup run", async () => {
    await eventually(async () => /primary/.test(await page.getByTestId("db-mode").innerText()));
    expect(await page.getByTestId("db-mode").innerText()).toMatch(/PostgreSQL · ok/);
    expect(await page.getByTestId("db-pending").innerText()).toMatch(/^0/);
    expect(await page.getByTestId("db-pool").innerText()).toMatch(/\/ 10 max/);
    // The schedule runs every second in this test; the panel refreshes every 5 s.
    await eventually(async () =>
      /deleted 0 threads, 0 checkpoints/.test(await page.getByTestId("cleanup-last").innerText()),
    );
    await screenshot(page, "desktop-ops");
  });

  it("has a labelled message box, a Send button and a conversation log", async () => {
    expect(await messageBox(page).isVisible()).toBe(true);
    expect(await page.getByRole("button", { name: "Send" }).isVisible()).toBe(true);
    expect(await page.getByRole("log").count()).toBe(1);
    expect(await page.getByRole("button", { name: "New chat" }).isVisible()).toBe(true);
  });

  it("stays readable on a phone-sized viewport", async () => {
    await page.setViewportSize(PHONE);
    const overflow = await page.evaluate(() => {
      const root = (globalThis as unknown as PageWindow).document.documentElement;
      return root.scrollWidth - root.clientWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    expect((await messageBox(page).boundingBox())!.width).toBeGreaterThan(200);
    const threads = page.getByRole("navigation", { name: "Threads" });
    expect(await threads.isVisible()).toBe(false);
    await page.getByRole("button", { name: "Threads" }).click();
    expect(await threads.isVisible()).toBe(true);
    await screenshot(page, "phone");
  });
});

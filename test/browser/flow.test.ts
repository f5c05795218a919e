import { copyFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@langchain/langgraph-sdk";
import pino from "pino";
import type pg from "pg";
import type { BrowserContext, Page } from "playwright-core";
import { packageRoot } from "../../src/paths.js";
import { startService, type RunningService } from "../../src/service/composition-root.js";
import { chromiumAvailable, launchChromium } from "../helpers/browser.js";
import { dropSchema, requirePostgres, testPool, uniqueSchema } from "../helpers/db.js";
import { testConfig } from "../integration/http/helpers.js";
import { buildPage, RESULTS_DIR, screenshot, watchConsole, type PageWindow } from "./helpers.js";

/**
 * A person's session on the page, in Chromium, against the real service serving three graphs:
 * the built-in offline `chat`, the test agent (streaming model, tools, `interrupt()`;
 * test/fixtures/graphs/agent.ts) and a one-question approval graph. The page's conversation is
 * `useStream` from `@langchain/langgraph-sdk/react` in the page's React tree: submit, token
 * streaming, and the reload of a thread's messages are those of the hook against the service.
 *
 * Steps share one page and build on each other, as a person's session does. Screenshots go to
 * test-results/ (gitignored); `UPDATE_DOCS_SCREENSHOT=1` also copies the desktop one to
 * docs/page.png for the README.
 */

const haveChromium = chromiumAvailable();
const AGENT = fileURLToPath(new URL("../fixtures/graphs/agent.ts", import.meta.url));
const APPROVAL = fileURLToPath(new URL("./fixtures/approval-graph.ts", import.meta.url));
const PHONE = { width: 390, height: 844 };

const messageBox = (page: Page) => page.getByRole("textbox", { name: /message/i });
const log = (page: Page) => page.getByRole("log", { name: "Conversation" });
const threadList = (page: Page) => page.getByRole("navigation", { name: "Threads" });
const threadItems = (page: Page) => threadList(page).locator("li");

async function eventually(check: () => Promise<boolean>, what: string, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not reached: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The texts of the conversation's messages, by role. */
async function conversation(page: Page): Promise<{ role: string; text: string }[]> {
  return log(page)
    .locator(".msg")
    .evaluateAll((nodes) =>
      nodes.map((n) => ({
        role: n.getAttribute("data-role") ?? "",
        text: n.querySelector(".msg-text")?.textContent ?? "",
      })),
    );
}

/** Waits until no run is streaming (the log is not busy and Send would work). */
async function idle(page: Page): Promise<void> {
  await eventually(
    async () => (await log(page).getAttribute("aria-busy")) === "false",
    "the run to end",
  );
}

/**
 * Types a message, sends it with Enter, and records every distinct length the streaming reply
 * had on screen (a MutationObserver in the page), to prove tokens were rendered as they came.
 */
async function send(page: Page, text: string): Promise<number> {
  await page.evaluate(() => {
    const w = globalThis as unknown as PageWindow;
    const lengths = new Set<number>();
    w.__replyLengths = lengths;
    const root = w.document.querySelector('[role="log"]')!;
    new w.MutationObserver(() => {
      const replies = root.querySelectorAll('.msg[data-role="ai"] .msg-text');
      const last = replies[replies.length - 1];
      if (last?.textContent) lengths.add(last.textContent.length);
    }).observe(root, { childList: true, subtree: true, characterData: true });
  });
  await messageBox(page).fill(text);
  await messageBox(page).press("Enter");
  await eventually(
    async () => (await log(page).getAttribute("aria-busy")) === "true",
    "the run to start",
  );
  await idle(page);
  return page.evaluate(() => (globalThis as unknown as PageWindow).__replyLengths?.size ?? 0);
}

function threadId(page: Page): string | null {
  return new URL(page.url()).searchParams.get("thread");
}

async function pickGraph(page: Page, graph: string): Promise<void> {
  await page.getByLabel("Graph").selectOption({ label: graph });
}

describe.skipIf(!haveChromium)("a session on the web page in Chromium", () => {
  const schema = uniqueSchema("web_flow");
  let webRoot: string;
  let pool: pg.Pool;
  let service: RunningService;
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let page: Page;
  let problems: string[];
  let sdk: Client;
  let first: string;
  let second: string;

  beforeAll(async () => {
    await requirePostgres();
    webRoot = await buildPage();
    pool = testPool(1);
    const config = testConfig(schema, {
      // The TTL sweep is on (the page shows when it will delete each thread) but never fires.
      cleanup: { enabled: true, schedule: "0 0 1 1 *", ttl: "7d" },
      model: { offlineTokenDelay: 15 },
    });
    service = await startService(config, {
      logger: pino({ level: "silent" }),
      webRoot,
      graphs: [
        { name: "agent", file: AGENT, exportName: "graph", source: "flag" },
        { name: "approval", file: APPROVAL, exportName: "graph", source: "flag" },
      ],
    });
    sdk = new Client({ apiUrl: service.url, apiKey: null });
    browser = await launchChromium();
    page = await browser.context.newPage();
    problems = watchConsole(page);
    await page.goto(service.url);
    await messageBox(page).waitFor();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await service?.shutdown("test");
    await dropSchema(pool, schema);
    await pool.end();
    if (webRoot) await rm(webRoot, { recursive: true, force: true });
  });

  it("sends two messages and shows the replies as they stream; the URL names the thread", async () => {
    expect(await page.getByLabel("Graph").inputValue()).toBeTruthy();
    expect(threadId(page)).toBeNull();
    const seen1 = await send(page, "My name is Frank");
    first = threadId(page)!;
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    const seen2 = await send(page, "What is my name?");
    // Token by token: the reply grew through many lengths on screen, not in one piece.
    expect(seen1).toBeGreaterThan(5);
    expect(seen2).toBeGreaterThan(5);
    const shown = await conversation(page);
    expect(shown.map((m) => m.role)).toEqual(["human", "ai", "human", "ai"]);
    expect(shown[1]!.text).toMatch(/turn 1\. You said: "My name is Frank"/);
    expect(shown[3]!.text).toMatch(/turn 2\. You said: "What is my name\?"/);
    // Focus stays in the message box after sending.
    expect(
      await page.evaluate(
        () => (globalThis as unknown as PageWindow).document.activeElement?.id ?? "",
      ),
    ).toBe("message");
    await screenshot(page, "flow-1-two-messages");
  });

  it("after a reload the thread's messages load again from the service", async () => {
    const before = await conversation(page);
    await page.reload();
    await eventually(async () => (await conversation(page)).length === 4, "the thread to load");
    expect(threadId(page)).toBe(first);
    expect(await conversation(page)).toEqual(before);
  });

  it("lists the thread titled by its first message, with its last activity and TTL deletion", async () => {
    await eventually(async () => (await threadItems(page).count()) === 1, "the thread list");
    const item = threadItems(page).first();
    expect(await item.locator(".thread-title").innerText()).toBe("My name is Frank");
    const meta = await item.locator(".small").innerText();
    expect(meta).toMatch(/now|seconds? ago/);
    expect(meta).toMatch(/deleted in 7 days/);
    expect(await item.locator("button[aria-current=page]").count()).toBe(1);
  });

  it("New chat empties the conversation; its first message starts a second thread listed first", async () => {
    await page.getByRole("button", { name: "New chat" }).click();
    expect(threadId(page)).toBeNull();
    expect(await conversation(page)).toEqual([]);
    await send(page, "A second conversation");
    second = threadId(page)!;
    expect(second).not.toBe(first);
    await eventually(async () => (await threadItems(page).count()) === 2, "two threads listed");
    expect(await threadItems(page).locator(".thread-title").allInnerTexts()).toEqual([
      "A second conversation",
      "My name is Frank",
    ]);
  });

  it("reopens the first thread from the list, with its history", async () => {
    await threadList(page)
      .getByRole("button", { name: /^My name is Frank/ })
      .click();
    await eventually(async () => (await conversation(page)).length === 4, "the first thread");
    expect(threadId(page)).toBe(first);
    expect((await conversation(page))[0]!.text).toBe("My name is Frank");
    // Back returns to the second thread (the URL is the history entry).
    await page.goBack();
    await eventually(() => Promise.resolve(threadId(page) === second), "back to the second thread");
    await eventually(async () => (await conversation(page)).length === 2, "the second thread");
    await page.goForward();
    await eventually(async () => (await conversation(page)).length === 4, "forward again");
  });

  it("regenerates the last answer in place", async () => {
    const before = await conversation(page);
    await log(page).getByRole("button", { name: "Regenerate" }).click();
    await eventually(
      async () => (await log(page).getAttribute("aria-busy")) === "true",
      "regeneration to start",
    );
    await idle(page);
    const after = await conversation(page);
    expect(after.map((m) => m.role)).toEqual(["human", "ai", "human", "ai"]);
    expect(after[3]!.text).toBe(before[3]!.text);
    // The new answer is a new branch: the thread's history now has a sibling checkpoint.
    const history = await sdk.threads.getHistory(first, { limit: 50 });
    const parents = history.map((h) => h.parent_checkpoint?.checkpoint_id);
    expect(new Set(parents).size).toBeLessThan(parents.length);
  });

  it("forks from an older checkpoint in the history timeline", async () => {
    const timeline = page.getByRole("list", { name: "Checkpoints, newest first" });
    await eventually(async () => (await timeline.locator("li").count()) > 3, "the timeline");
    // The checkpoint after the first answer: two messages, nothing next.
    const afterFirst = timeline
      .locator("li")
      .filter({ hasText: /^.*2 messages(?! · next)/ })
      .first();
    await afterFirst.getByRole("button", { name: /Fork from step/ }).click();
    await page.getByRole("status").filter({ hasText: "Forking from step" }).waitFor();
    expect((await conversation(page)).length).toBe(2);
    const forkRequest = page.waitForRequest(
      (r) => r.url().endsWith(`/threads/${first}/runs/stream`) && r.method() === "POST",
    );
    await send(page, "Forked question");
    // The page ran the new message from the chosen checkpoint...
    const body = JSON.parse((await forkRequest).postData() ?? "{}") as {
      checkpoint?: { checkpoint_id?: string };
      input?: { messages?: { content: string }[] };
    };
    expect(body.input?.messages?.[0]?.content).toBe("Forked question");
    const chosen = body.checkpoint?.checkpoint_id;
    expect(chosen).toBeDefined();
    // ...and the thread has a new branch from it: its newest checkpoint descends from the chosen
    // one without passing through the checkpoints of the second turn.
    const history = await sdk.threads.getHistory(first, { limit: 100 });
    const byId = new Map(history.map((h) => [h.checkpoint.checkpoint_id, h]));
    const chain: string[] = [];
    for (let at = history[0]; at; at = byId.get(at.parent_checkpoint?.checkpoint_id ?? "")) {
      chain.push(at.checkpoint.checkpoint_id!);
      if (at.checkpoint.checkpoint_id === chosen) break;
    }
    expect(chain.at(-1)).toBe(chosen);
    expect(chain.length).toBe(4);
    expect(await page.getByRole("status").filter({ hasText: "Forking from step" }).count()).toBe(0);
    // The conversation shows that branch: four messages, the reply for its second turn.
    const forked = await conversation(page);
    expect(forked.map((m) => m.role)).toEqual(["human", "ai", "human", "ai"]);
    expect(forked[3]!.text).toMatch(/turn 2\./);
    expect(forked[2]!.text).toBe("Forked question");
    expect(forked[3]!.text).toMatch(/turn 2\. You said: "Forked question"/);
    // Read back from the service: the branch holds the forked message.
    const state = await sdk.threads.getState<{ messages: { content: string }[] }>(first);
    expect(state.values.messages.map((m) => m.content)[2]).toBe("Forked question");
    await screenshot(page, "flow-2-forked");
  });

  it("answers an interrupt with its buttons and the run completes", async () => {
    await pickGraph(page, "approval");
    expect(threadId(page)).toBeNull();
    await messageBox(page).fill("Ship version 2");
    await messageBox(page).press("Enter");
    const prompt = page.getByTestId("interrupt");
    await prompt.waitFor();
    expect(await prompt.locator(".interrupt-question").innerText()).toBe("Deploy to production?");
    const approvalThread = threadId(page)!;
    expect((await sdk.threads.get(approvalThread)).status).toBe("interrupted");
    await screenshot(page, "flow-3-interrupt");
    await prompt.getByRole("button", { name: "Approve" }).click();
    await eventually(
      async () => (await conversation(page)).some((m) => m.text === "Decision: Approve"),
      "the answer to resume the run",
    );
    expect(await page.getByTestId("interrupt").count()).toBe(0);
    await eventually(
      async () => (await sdk.threads.get(approvalThread)).status === "idle",
      "the run to release the thread",
    );
  });

  it("shows tool calls and their results folded", async () => {
    await pickGraph(page, "agent");
    await send(page, "what is the weather in Paris");
    const call = log(page).locator("details[data-tool-call=get_weather]");
    await call.waitFor();
    expect(await call.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(false);
    expect(await call.locator("summary").innerText()).toBe("Tool call: get_weather (done)");
    await call.locator("summary").click();
    expect(await call.innerText()).toContain("It is sunny in Paris.");
    expect((await conversation(page)).at(-1)!.text).toBe("Done: It is sunny in Paris.");
  });

  it("Stop ends a streaming reply early and the thread takes the next message", async () => {
    await page.getByRole("button", { name: "New chat" }).click();
    const words = Array.from({ length: 300 }, (_, i) => `w${i}`).join(" ");
    await messageBox(page).fill(words);
    await messageBox(page).press("Enter");
    // A full reply is 304 tokens, 40 ms apart; stop once the first ones are on screen.
    await eventually(
      async () => ((await conversation(page)).at(-1)?.text ?? "").startsWith("Hello there"),
      "the first tokens",
    );
    await page.getByRole("button", { name: "Stop" }).click();
    await idle(page);
    const stopped = (await conversation(page)).filter((m) => m.role === "ai").at(-1);
    expect((stopped?.text ?? "").split(" ").length).toBeLessThan(300);
    const stoppedThread = threadId(page)!;
    await eventually(
      async () => (await sdk.threads.get(stoppedThread)).status !== "busy",
      "the cancelled run to release its thread",
    );
    await send(page, "hello again");
    expect((await conversation(page)).at(-1)!.text).toBe("Hello there, you said: hello again");
  });

  it("deletes a thread from the list", async () => {
    await eventually(async () => (await threadItems(page).count()) >= 4, "all threads listed");
    const before = await threadItems(page).count();
    const item = threadItems(page).filter({ hasText: "A second conversation" });
    await item.getByRole("button", { name: /^Delete thread/ }).click();
    await item.getByRole("button", { name: /^Confirm delete/ }).click();
    await eventually(
      async () => (await threadItems(page).count()) === before - 1,
      "the thread to leave the list",
    );
    expect(await threadList(page).getByText("A second conversation").count()).toBe(0);
    // The list drops it at once; the DELETE completes right after.
    await eventually(
      () =>
        sdk.threads.get(second).then(
          () => false,
          (err: unknown) => /404/.test(String(err)),
        ),
      "the thread to be deleted on the service",
    );
  });

  it("lists threads newest activity first", async () => {
    await page.reload();
    await eventually(async () => (await threadItems(page).count()) >= 4, "the list after reload");
    const listed = await threadItems(page).evaluateAll((nodes): (string | null)[] =>
      (nodes as unknown as { getAttribute(name: string): string | null }[]).map((n) =>
        n.getAttribute("data-thread-id"),
      ),
    );
    const threads = await sdk.threads.search({ limit: 50 });
    const newestFirst = [...threads].sort((a, b) => b.updated_at.localeCompare(a.updated_at));
    expect(listed).toEqual(newestFirst.map((t) => t.thread_id));
    // The thread answered last (the Stop test's) is on top.
    expect(await threadItems(page).first().locator(".thread-title").innerText()).toMatch(/^w0 w1/);
  });

  it("switches to a narrow viewport and stays usable", async () => {
    await threadList(page)
      .getByRole("button", { name: /^My name is Frank/ })
      .click();
    await eventually(async () => (await conversation(page)).length === 4, "the first thread");
    await screenshot(page, "flow-4-desktop");
    if (process.env.UPDATE_DOCS_SCREENSHOT === "1")
      await copyFile(
        join(RESULTS_DIR, "flow-4-desktop.png"),
        join(packageRoot(), "docs", "page.png"),
      );
    await page.setViewportSize(PHONE);
    const overflow = await page.evaluate(() => {
      const root = (globalThis as unknown as PageWindow).document.documentElement;
      return root.scrollWidth - root.clientWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    expect((await messageBox(page).boundingBox())!.width).toBeGreaterThan(300);
    expect(await threadList(page).isVisible()).toBe(false);
    await page.getByRole("button", { name: "Threads" }).click();
    expect(await threadList(page).isVisible()).toBe(true);
    await screenshot(page, "flow-5-phone-threads");
    await threadList(page)
      .getByRole("button", { name: /^My name is Frank/ })
      .click();
    expect(await threadList(page).isVisible()).toBe(false);
    await send(page, "From the phone");
    expect((await conversation(page)).at(-1)!.text).toMatch(/You said: "From the phone"/);
    await screenshot(page, "flow-6-phone-chat");
  });

  it("logged no console errors during the session", () => {
    expect(problems).toEqual([]);
  });
});

/**
 * Child process of heap-bound.test.ts (run with `node --expose-gc --import tsx`): writes
 * `THREADS` threads of one ~900 KB message each, through the library (a LangGraph graph on the
 * default saver stack) or through the service's HTTP API, then reports the retained heap after
 * a full GC as one JSON line on stdout. Default options throughout: that is what is bounded.
 */
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { MessagesAnnotation, StateGraph } from "@langchain/langgraph";
import pino from "pino";
import { FallbackCheckpointer } from "../../../src/checkpoint/fallback/index.js";
import { PostgresCheckpointer } from "../../../src/checkpoint/postgres/saver.js";
import { configSchema } from "../../../src/config/schema.js";
import { startService } from "../../../src/service/composition-root.js";

const [mode, url, schema, threadsArg] = process.argv.slice(2) as [string, string, string, string];
const THREADS = Number(threadsArg);
const MESSAGE_CHARS = 900 * 1024;

function textOf(message: BaseMessage | undefined): string {
  return typeof message?.content === "string" ? message.content : "";
}

function gcHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** A distinct ~900 KB text per thread (compressible, so Postgres stays small). */
function bigText(i: number): string {
  return `thread ${i} `.padEnd(MESSAGE_CHARS, "lorem ipsum dolor sit amet ");
}

async function library(): Promise<Record<string, unknown>> {
  const primary = PostgresCheckpointer.fromConnString(url, { schema });
  await primary.setup();
  const checkpointer = new FallbackCheckpointer(primary);
  await checkpointer.start();
  const graph = new StateGraph(MessagesAnnotation)
    .addNode("reply", (state: { messages: BaseMessage[] }) => ({
      messages: [new AIMessage(`got ${textOf(state.messages.at(-1)).length} chars`)],
    }))
    .addEdge("__start__", "reply")
    .compile({ checkpointer });
  const invoke = (thread: string, text: string) =>
    graph.invoke(
      { messages: [{ role: "user", content: text }] },
      { configurable: { thread_id: thread } },
    );
  await invoke("lib-warmup", "hello");
  const baseline = gcHeap();
  for (let i = 0; i < THREADS; i++) await invoke(`lib-big-${i}`, bigText(i));
  const retained = gcHeap() - baseline;
  // Still serving: a new turn on the first (long evicted) thread and on a new one read whole.
  const first = await invoke("lib-big-0", "again");
  const fresh = await invoke("lib-after", "hi");
  await checkpointer.close();
  return {
    baseline,
    retained,
    firstMessages: first.messages.length,
    firstChars: textOf(first.messages[0]).length,
    freshMessages: fresh.messages.length,
  };
}

async function chat(base: string, id: string, text: string): Promise<string> {
  const res = await fetch(`${base}/api/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      id,
      message: { id: `m-${id}-${text.length}`, role: "user", parts: [{ type: "text", text }] },
    }),
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`chat ${id}: ${res.status} ${body.slice(0, 300)}`);
  return body;
}

async function service(): Promise<Record<string, unknown>> {
  const config = configSchema.parse({
    database: { url, schema },
    server: { port: 0, host: "127.0.0.1", rateLimit: { max: 1_000_000 } },
    cleanup: { enabled: false },
    log: { level: "silent" },
  });
  const running = await startService(config, {
    logger: pino({ level: "silent" }),
    cleanup: false,
    webRoot: false,
  });
  try {
    await chat(running.url, "warmup", "hello");
    const baseline = gcHeap();
    for (let i = 0; i < THREADS; i++) await chat(running.url, `big-${i}`, bigText(i));
    const retained = gcHeap() - baseline;
    await chat(running.url, "big-0", "again");
    const res = await fetch(`${running.url}/api/chat/big-0/messages`);
    const loaded = (await res.json()) as { messages: Array<{ parts: Array<{ text?: string }> }> };
    await chat(running.url, "after", "hi");
    const health = await fetch(`${running.url}/health/ready`);
    return {
      baseline,
      retained,
      firstMessages: loaded.messages.length,
      firstChars: loaded.messages[0]?.parts.map((p) => p.text ?? "").join("").length ?? 0,
      ready: health.status,
    };
  } finally {
    await running.shutdown("test");
  }
}

const result = mode === "library" ? await library() : await service();
process.stdout.write(`${JSON.stringify({ mode, threads: THREADS, ...result })}\n`);

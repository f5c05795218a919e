import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TEST_DATABASE_URL, installedSchema } from "../../helpers/db.js";

const run = promisify(execFile);
const child = fileURLToPath(new URL("./heap-child.ts", import.meta.url));

/**
 * 150 threads of one 900 KB message each are 135 MB of messages. With default options the delta
 * cache (checkpoint.deltaCacheMaxBytes, 64 MiB) and the fallback's cache (fallback.cacheMaxBytes,
 * 64 MiB) hold mostly the same message objects, so a process keeps about 64 MiB of them: the
 * README documents "under 100 MiB above idle", which is what is asserted. Before the byte bounds,
 * the delta cache kept every thread (519 MB for 600 threads; the service died at 4,706).
 */
const THREADS = 150;
const BOUND_BYTES = 100 * 1024 * 1024;

interface Report {
  retained: number;
  firstMessages: number;
  firstChars: number;
}

async function measure(mode: "library" | "service", schema: string): Promise<Report> {
  const { stdout } = await run(
    process.execPath,
    ["--expose-gc", "--import", "tsx", child, mode, TEST_DATABASE_URL, schema, String(THREADS)],
    { maxBuffer: 1024 * 1024, env: { ...process.env, NODE_OPTIONS: "" } },
  );
  const line = stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line) as Report;
}

describe("memory is bounded by bytes (900 KB messages, default options)", () => {
  const { schema } = installedSchema("tl_heap");
  let library: Promise<Report>;
  let service: Promise<Report & { ready: number }>;

  beforeAll(() => {
    // Both processes at once: the test costs the slower of the two.
    library = measure("library", schema);
    service = measure("service", schema) as Promise<Report & { ready: number }>;
    // Neither rejection may go unhandled before its test awaits it.
    library.catch(() => undefined);
    service.catch(() => undefined);
  });

  it(`a library process keeps under 100 MiB after ${THREADS} threads of 900 KB and still reads an evicted thread whole`, async () => {
    const report = await library;
    expect(report.retained).toBeLessThan(BOUND_BYTES);
    // big-0 was evicted long ago: its next turn read it from Postgres, message intact.
    expect(report.firstMessages).toBe(4);
    expect(report.firstChars).toBe(900 * 1024);
  }, 400_000);

  it(`the service keeps under 100 MiB after ${THREADS} chats of 900 KB and keeps serving`, async () => {
    const report = await service;
    expect(report.retained).toBeLessThan(BOUND_BYTES);
    // Both turns of big-0 are there, the first message whole.
    expect(report.firstMessages).toBeGreaterThanOrEqual(4);
    expect(report.firstChars).toBe(900 * 1024);
    expect(report.ready).toBe(200);
  }, 400_000);
});

import { execFile } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { packagesLoadedBy, SERVICE_PACKAGES } from "../../helpers/module-graph.js";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../..", import.meta.url));
const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");

// A project that depends on the built package the way an npm user does: the package's `exports`
// and declarations, its runtime dependencies only (what `npm install threadline` brings; no
// devDependencies such as @types/*), strict TypeScript with `skipLibCheck: false`.
function runtimePackages(): string[] {
  const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([key, entry]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(key) && !entry.dev)
    .filter(([, entry]) => !entry.devOptional)
    .map(([key]) => key.slice("node_modules/".length));
}

const CONSUMER = `
import pg from "pg";
import * as library from "threadline";
import {
  FallbackCheckpointer,
  ForwardingSaver,
  PostgresCheckpointer,
  ThreadlineError,
  loadConfig,
  type FallbackStatus,
  type ThreadlineConfig,
} from "threadline";
import * as service from "threadline/service";
import * as cleanup from "threadline/cleanup";
import * as importer from "threadline/importer";
import * as metrics from "threadline/metrics";

const pool = new pg.Pool({ connectionString: "postgres://nobody@127.0.0.1:1/none" });
const saver = new PostgresCheckpointer(pool, { schema: "consumer" });
const fallback = new FallbackCheckpointer(saver);
const wrapped: ForwardingSaver = new ForwardingSaver(fallback);
export const status = (): FallbackStatus => fallback.status();
export const load = (): ThreadlineConfig => loadConfig("config.yaml");
export const app = (config: ThreadlineConfig): service.ThreadlineApp =>
  service.createApp({ checkpointer: wrapped, model: new service.OfflineChatModel(), config });
export const start = async (config: ThreadlineConfig): Promise<string> =>
  (await service.startService(config)).url;
export const sweep = (config: ThreadlineConfig) =>
  cleanup.runCleanup(pool, { schema: config.database.schema, ttlMs: 7 * 24 * 3600 * 1000 });
export const failure: ThreadlineError = new ThreadlineError("INVALID_INPUT", "example");

const entries = { library, service, cleanup, importer, metrics };
console.log(
  JSON.stringify(Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, Object.keys(v)]))),
);
await pool.end();
`;

describe("the published package", () => {
  let dir: string;
  let consumer: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tl-consumer-"));
    consumer = join(dir, "consumer");
    const pkg = join(consumer, "node_modules", "threadline");
    mkdirSync(pkg, { recursive: true });
    // The same build as `npm run build` (its web page aside), into the package's place.
    await run(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", join(pkg, "dist")], {
      cwd: repo,
    });
    copyFileSync(join(repo, "package.json"), join(pkg, "package.json"));
    for (const name of runtimePackages()) {
      const link = join(consumer, "node_modules", name);
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(join(repo, "node_modules", name), link, "dir");
    }
    writeFileSync(
      join(consumer, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    writeFileSync(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2023"],
          strict: true,
          skipLibCheck: false,
          outDir: "out",
        },
        files: ["index.ts"],
      }),
    );
    writeFileSync(join(consumer, "index.ts"), CONSUMER);
  }, 600_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("gives the consumer the runtime dependencies and no development-only package", () => {
    const installed = new Set(runtimePackages());
    for (const name of ["pg", "@types/pg", "@types/express", "express", "zod"])
      expect(installed.has(name)).toBe(true);
    for (const name of ["typescript", "vitest", "@types/cli-progress", "@types/react", "eslint"])
      expect(installed.has(name)).toBe(false);
  });

  it("type-checks a strict consumer with skipLibCheck false against its declarations", async () => {
    const result = await run(process.execPath, [tsc, "-p", "tsconfig.json"], {
      cwd: consumer,
    }).then(
      () => "",
      (err: { stdout?: string; message: string }) => err.stdout || err.message,
    );
    expect(result).toBe("");
  }, 600_000);

  it("resolves every subpath export at run time, with the service only under threadline/service", async () => {
    const { stdout } = await run(process.execPath, ["out/index.js"], { cwd: consumer });
    const keys = JSON.parse(stdout) as Record<string, string[]>;
    expect(keys.library).toEqual(
      expect.arrayContaining([
        "PostgresCheckpointer",
        "FallbackCheckpointer",
        "loadConfig",
        "migrate",
      ]),
    );
    expect(keys.library).not.toContain("createApp");
    expect(keys.service).toEqual(
      expect.arrayContaining(["createApp", "startService", "buildSavers"]),
    );
    expect(keys.cleanup).toEqual(expect.arrayContaining(["runCleanup", "startCleanupSchedule"]));
    expect(keys.importer).toContain("importRedis");
    expect(keys.metrics).toEqual(
      expect.arrayContaining(["registerFallbackMetrics", "registerServiceMetrics"]),
    );
  }, 300_000);

  it("loads none of the service's packages from the built root entry", async () => {
    const loaded = await packagesLoadedBy("threadline", { cwd: consumer });
    expect(loaded.has("pg") && loaded.has("pg-pool")).toBe(true);
    expect(SERVICE_PACKAGES.filter((name) => loaded.has(name))).toEqual([]);
  }, 300_000);
});

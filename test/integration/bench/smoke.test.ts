import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { requirePostgres } from "../../helpers/db.js";
import { tempDir } from "../../helpers/tmp.js";

// Keeps `npm run bench -- --quick` working end to end. It asserts that every figure is produced,
// never how fast anything is (timings belong to the benchmark, not to tests).
beforeAll(requirePostgres);

it("npm run bench -- --quick produces every figure and writes --json", async () => {
  const out = join(tempDir("tl-bench-"), "figures.json");
  const { code, stdout, stderr } = await new Promise<{
    code: number | null;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "bench/index.ts", "--quick", "--json", out],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (c) => resolve({ code: c, stdout, stderr }));
  });
  expect(code, stderr.slice(-2000)).toBe(0);
  expect(stdout).toContain("## Targets");
  const figures = JSON.parse(readFileSync(out, "utf8"));
  expect(figures.quick).toBe(true);
  const ops = figures.checkpoint.operations.map((o: { operation: string }) => o.operation);
  expect(ops).toEqual(
    expect.arrayContaining([
      "put",
      "putWrites (2 writes)",
      "getTuple by id",
      "list limit 10, 200-checkpoint thread",
    ]),
  );
  for (const op of figures.checkpoint.operations) {
    expect(op.vsOfficial).toBeGreaterThan(0);
    expect(op.vsMemory).toBeGreaterThan(0);
  }
  expect(figures.checkpoint.statementsPerTurn.threadline).toBeGreaterThan(0);
  expect(figures.checkpoint.storage.threadline.bytes).toBeGreaterThan(0);
  expect(figures.prepared.chatTurn.ratios["unnamed/named"]).toBeGreaterThan(0);
  expect(figures.prepared.getTuple.ratio).toBeGreaterThan(0);
  expect(figures.agentServer.ratios["wait/memory"]).toBeGreaterThan(0);
  expect(figures.agentServer.ratios["stream/memory"]).toBeGreaterThan(0);
  expect(figures.sweep.checkpointsDeleted).toBeGreaterThan(0);
  expect(figures.import.checkpoints).toBeGreaterThan(0);
  // The figure is the median of the shipped runs, each importing every checkpoint.
  const shipped = figures.import.shippedRuns as Array<{
    checkpoints: number;
    checkpointsPerSec: number;
  }>;
  expect(shipped).toHaveLength(3);
  for (const run of shipped) expect(run.checkpoints).toBe(figures.import.checkpoints);
  const rates = shipped.map((run) => run.checkpointsPerSec).sort((a, b) => a - b);
  expect(figures.import.checkpointsPerSec).toBe(rates[1]);
  expect(figures.import.cpuFloor.perSec).toBeGreaterThan(0);
  expect(figures.import.cpuFloor.documents).toBeGreaterThan(0);
  // The server runs on this host here (CI too), so its CPU is read from /proc.
  expect(figures.import.machineCpu.nodeUs).toBeGreaterThan(0);
  expect(figures.import.machineCpu.postgresUs).toBeGreaterThan(0);
  expect(figures.import.machineCpu.boundPerSec).toBeGreaterThan(0);
  expect(figures.load.turns).toBeGreaterThan(0);
  for (const side of ["threadline", "memory", "official"]) {
    expect(figures.loadSideBySide[side].turns).toBeGreaterThan(0);
  }
  expect(figures.loadSideBySide.ratios["threadline/memory"]).toBeGreaterThan(0);
  expect(figures.loadSideBySide.ratios["threadline/official"]).toBeGreaterThan(0);
  // The ceiling row (MemorySaver's service against the official saver's) stands next to the 2x target.
  const ceiling = figures.targets.find((t: { name: string }) => t.name.startsWith("load: ceiling"));
  expect(ceiling?.value).toBeGreaterThan(0);
  expect(figures.turnCpu.cpuMsPerTurn.threadline).toBeGreaterThan(0);
  expect(figures.turnCpu.cpuMsPerTurn.memory).toBeGreaterThan(0);
  // A count, not a timing: DeltaChannel's history read is one statement.
  expect(figures.instances.delta.historyStatements.threadline).toBe(1);
  for (const k of ["ratio", "deltaRatio", "threadlineRatio", "deltaThreadlineRatio"])
    expect(figures.instances.floor[k]).toBeGreaterThan(0);
  expect(figures.targets.length).toBeGreaterThanOrEqual(16);
}, 600_000);

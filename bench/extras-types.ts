/** The figures bench/extras.ts prints from each capability's benchmark. */
export interface SweepResultLike {
  checkpointsDeletedPerSec: number;
  checkpointsDeleted: number;
  writerP99Baseline: number;
  writerP99During: number;
  ratio: number;
  pause: number;
  batchSize: number;
  floor: {
    checkpointsDeleted: number;
    checkpointsDeletedPerSec: number;
    writerP99Baseline: number;
    writerP99During: number;
    ratio: number;
    busyPerSec: number;
  };
}
export interface BenchImportResultLike {
  threads: number;
  checkpoints: number;
  checkpointsPerSec: number;
  shippedRuns: Array<{ checkpointsPerSec: number }>;
  ratio: number;
  insertOnly: { checkpointsPerSec: number };
  dryRun: { checkpointsPerSec: number };
  writeOnly: {
    insertPerSec: number;
    copyPerSec: number;
    stagedCopyPerSec: number;
    ratio: number;
    batches: number;
  };
  stages: { readEndShare: number; rawReadPerSec: number };
  cpuFloor: { perSec: number; parseMs: number; outputMs: number; documents: number };
  machineCpu?: MachineCpu;
}
/** CPU of the whole machine per imported checkpoint (bench/import.ts), and the rate it allows. */
export interface MachineCpu {
  nodeUs: number;
  postgresUs: number;
  redisUs: number;
  totalUs: number;
  cores: number;
  boundPerSec: number;
}
export interface BenchLoadResultLike {
  concurrency: number;
  durationMs: number;
  turns: number;
  errors: number;
  turnsPerSecond: number;
  latencyMs: { p50: number; p99: number };
}

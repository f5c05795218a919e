import { createWriteStream, type WriteStream } from "node:fs";
import {
  JsonPlusSerializer,
  type BaseCheckpointSaver,
  type SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import type { Redis } from "ioredis";
import type pg from "pg";
import { PostgresCheckpointer } from "../checkpoint/index.js";
import { migrate } from "../db/migrator.js";
import { ThreadlineError, isThreadlineError } from "../errors.js";
import { silentLogger, type Logger } from "../logger.js";
import { planThread, type HistoryMode, type ThreadSource } from "./assemble.js";
import { ThreadEvents, type RecordRejection } from "./ingest.js";
import { serializeThread, type ThreadRows } from "./serialize.js";
import { readRecords, scanKeys } from "./source.js";
import { formatsFor, type FormatChoice, type SourceFormat } from "./types.js";
import { addFlag, type ValueFlags } from "./values.js";
import { verifyThread, type VerifyMismatch } from "./verify.js";
import { ImportWriter, type ImportWriterOptions } from "./writer.js";

/** Options of {@link importRedis}. */
export interface ImportRedisOptions {
  /** The source (an ioredis client the caller owns and closes). Only read from. */
  redis: Redis;
  /** The target database. */
  pool: pg.Pool;
  /** Target schema. Default `public`. */
  schema?: string;
  /** `SCAN MATCH` glob for source keys. Default `*`. */
  match?: string;
  /** Source formats to read. Default `auto` (detected per key). */
  format?: FormatChoice;
  /** `latest` (default): each namespace's latest checkpoint and its pending writes; `full`: all. */
  history?: HistoryMode;
  /** `SCAN COUNT` hint. Default 1000. */
  scanCount?: number;
  /** Threads per Postgres transaction (also the Redis read pipeline depth is 5x this). Default 500 (large enough for COPY to pay off with `history: "full"`). */
  batchSize?: number;
  /** Transactions in flight at once. Default 4 (keep at or under the pool size). */
  concurrency?: number;
  /**
   * Rows of one table in one batch from which they are loaded with binary COPY (see
   * {@link ImportWriterOptions.copyMinRows}). Default 1000; `Infinity` never uses COPY.
   */
  copyMinRows?: ImportWriterOptions["copyMinRows"];
  /** Decode and convert everything, write nothing (not even migrations or the journal). */
  dryRun?: boolean;
  /** After the import, read every imported thread back through the checkpointer and compare. */
  verify?: boolean;
  /** JSONL file receiving one line per rejected thread or record. Truncated at start. */
  rejectsPath?: string;
  /** Journal label for the source. Default `host:port/db` of the client. */
  sourceLabel?: string;
  /** Stops after the batches in flight; the summary says `interrupted`, and a rerun resumes. */
  signal?: AbortSignal;
  onProgress?: (progress: ImportProgress) => void;
  logger?: Logger;
  /** The serializer the checkpointer reads with. Default `JsonPlusSerializer`. */
  serde?: SerializerProtocol;
  /** The saver `verify` reads through. Default `new PostgresCheckpointer(pool, { schema })`. */
  verifySaver?: BaseCheckpointSaver;
}

/** Where a run stands, for progress bars and log lines. */
export interface ImportProgress {
  phase: "scan" | "read" | "import" | "verify";
  /** Keys read (read phase) or threads handled (import/verify phases). */
  done: number;
  /** Keys to read, or threads found. */
  total: number;
  checkpointsImported: number;
}

/** One rejected thread (or, when its thread cannot be named, one record). */
export interface RejectEntry {
  threadId: string | null;
  key: string;
  formats: string[];
  reason: string;
}

/** The outcome of a run: the fields of `--json` that README promises first, details after. */
export interface ImportSummary {
  /** Threads that gained at least one checkpoint or write (dry run: would gain). */
  threadsImported: number;
  checkpointsImported: number;
  writesImported: number;
  /** Threads already imported (journal) or whose rows were all present. */
  skipped: number;
  /** Threads (or unattributable records) rejected as unconvertible; see the rejects file. */
  invalid: number;
  dryRun: boolean;
  durationMs: number;
  blobsImported: number;
  threadsFound: number;
  keysScanned: number;
  /** Checkpoint documents per detected source format. */
  formats: Partial<Record<SourceFormat, number>>;
  /** Keys with a saver's prefix whose format `--format` excluded. */
  excludedKeys: number;
  /**
   * Milliseconds from the start until the source was scanned, read and decoded; conversion and
   * writing take the rest of `durationMs`. Shows which stage bounds a run.
   */
  readMs?: number;
  /** Saver index keys (write zsets, latest pointers), skipped. */
  auxiliaryKeys: number;
  /** Keys no reader recognises. */
  unknownKeys: number;
  /**
   * Channels with a version but no value anywhere in the source, omitted as the savers omit
   * them: consumed trigger channels normally; an expired blob when the value mattered.
   */
  channelsWithoutValue: number;
  /** Writes whose checkpoint is not in the source. */
  orphanWrites: number;
  /** Python-isms converted (`python-lc-id`, `interrupt`, ...), by kind. */
  conversions: Record<string, number>;
  interrupted: boolean;
  verify?: { threads: number; checkpoints: number; mismatches: number; examples: VerifyMismatch[] };
}

/** Longest stretch of conversion between two turns of the event loop (see the batch worker). */
const YIELD_EVERY_MS = 5;

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Imports LangGraph checkpoints from Redis into the Postgres checkpoint tables.
 *
 * Phases: SCAN the keyspace; read every key with a saver prefix (MGET, then TYPE and JSON.GET /
 * GET / HGETALL for what is not a STRING) and group the records by the thread id their documents
 * name (the official savers' documents wait as text, see `ingest.ts`); decode each thread with the
 * first format reader that recognises each record and convert it (history selection, full channel
 * values, versions, LangChain ids) and write threads in batched transactions with their journal
 * rows; optionally verify. Threads that cannot be converted are rejected and reported, and the
 * run goes on. Holds the source's text in memory: narrow `match` for very large keyspaces.
 */
export async function importRedis(options: ImportRedisOptions): Promise<ImportSummary> {
  const started = performance.now();
  const schema = options.schema ?? "public";
  const history = options.history ?? "latest";
  const batchSize = Math.max(1, options.batchSize ?? 500);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const dryRun = options.dryRun ?? false;
  const logger = options.logger ?? silentLogger;
  const serde = options.serde ?? new JsonPlusSerializer();
  const admitted = formatsFor(options.format ?? "auto");
  const signal = options.signal;
  const redisOpts = options.redis.options;
  const sourceLabel =
    options.sourceLabel ??
    `${redisOpts.host ?? "localhost"}:${redisOpts.port ?? 6379}/${redisOpts.db ?? 0}`;

  const summary: ImportSummary = {
    threadsImported: 0,
    checkpointsImported: 0,
    writesImported: 0,
    skipped: 0,
    invalid: 0,
    dryRun,
    durationMs: 0,
    blobsImported: 0,
    threadsFound: 0,
    keysScanned: 0,
    formats: {},
    excludedKeys: 0,
    auxiliaryKeys: 0,
    unknownKeys: 0,
    channelsWithoutValue: 0,
    orphanWrites: 0,
    conversions: {},
    interrupted: false,
  };
  const progress = (phase: ImportProgress["phase"], done: number, total: number) =>
    options.onProgress?.({ phase, done, total, checkpointsImported: summary.checkpointsImported });

  let rejects: WriteStream | undefined;
  const reject = (entry: RejectEntry) => {
    summary.invalid++;
    logger.warn({ threadId: entry.threadId, key: entry.key, reason: entry.reason }, "rejected");
    rejects?.write(`${JSON.stringify(entry)}\n`);
  };

  try {
    if (options.rejectsPath !== undefined) {
      rejects = createWriteStream(options.rejectsPath, { flags: "w" });
      await new Promise<void>((resolve, reject) => {
        rejects!.once("open", () => resolve()).once("error", reject);
      });
    }
    if (!dryRun) await migrate(options.pool, { schema, logger });

    // Scan and read.
    progress("scan", 0, 0);
    const scan = await scanKeys(options.redis, {
      match: options.match ?? "*",
      count: options.scanCount ?? 1000,
      signal,
    });
    summary.keysScanned = scan.keys.length + scan.auxiliary + scan.unknown;
    summary.auxiliaryKeys = scan.auxiliary;
    summary.unknownKeys = scan.unknown;
    logger.info({ keys: summary.keysScanned, candidates: scan.keys.length }, "keyspace scanned");

    // Records wait by thread; most as their text, decoded when their thread is converted (I12).
    // Records that name no thread and cannot be converted are reported once the read is done.
    const recordInvalid = new Map<string, RecordRejection>();
    let reading = true;
    const events = new ThreadEvents(admitted, summary, (r) => {
      if (reading) recordInvalid.set(r.key, r);
      else reject({ threadId: null, key: r.key, formats: [], reason: r.reason });
    });
    let read = 0;
    for await (const records of readRecords(options.redis, scan.keys, {
      batchSize: batchSize * 5,
      signal,
    })) {
      for (const record of records) events.add(record);
      read += records.length;
      progress("read", read, scan.keys.length);
    }
    reading = false;
    for (const r of recordInvalid.values())
      reject({ threadId: null, key: r.key, formats: [], reason: r.reason });
    summary.readMs = Math.round(performance.now() - started);

    // Threads in id order; what each one holds is known once its records are decoded.
    const threadIds = events.threadIds().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    logger.info({ threads: threadIds.length }, "source read");
    // Record-level rejects count among the threads found, as they always have.
    let threadsFound = summary.invalid;

    /**
     * The thread ready to convert, or undefined: rejected (reported here), or holding no
     * checkpoint (writes or blobs of deleted threads, or a format excluded by --format).
     */
    const assemble = (threadId: string): ThreadSource | undefined => {
      const t = events.materialize(threadId);
      if (!t) return undefined;
      if (t.rejection) {
        threadsFound++;
        reject({
          threadId: t.threadId,
          key: t.rejection.key,
          formats: [...t.formats],
          reason: t.rejection.reason,
        });
        return undefined;
      }
      if (t.checkpoints.size === 0) {
        summary.orphanWrites += t.writes.size;
        return undefined;
      }
      threadsFound++;
      return t;
    };

    const writer = new ImportWriter(
      options.pool,
      schema,
      sourceLabel,
      options.copyMinRows !== undefined ? { copyMinRows: options.copyMinRows } : {},
    );
    const conversions: ValueFlags = new Map();
    const verifyRows: ThreadRows[] = [];
    let done = 0;
    progress("import", 0, threadIds.length);

    // Plans a thread; serializes it unless the journal shows this exact source state imported
    // (then only a verify run needs its rows).
    const convert = async (
      t: ThreadSource,
      journaled: string | undefined,
    ): Promise<{ rows?: ThreadRows; skipped: boolean } | undefined> => {
      try {
        const plan = planThread(t, history);
        const skipped = journaled === plan.fingerprint;
        if (skipped && !options.verify) return { skipped };
        const rows = await serializeThread(plan, serde);
        if (!skipped) {
          summary.channelsWithoutValue += plan.channelsWithoutValue;
          summary.orphanWrites += plan.orphanWrites;
          for (const [k, n] of plan.flags) addFlag(conversions, k, n);
        }
        return { rows, skipped };
      } catch (err) {
        if (!isThreadlineError(err, "IMPORT_RECORD_INVALID")) throw err;
        reject({
          threadId: t.threadId,
          key: [...t.checkpoints.values()][0]?.key ?? "",
          formats: [...t.formats],
          reason: err.message,
        });
        return undefined;
      }
    };

    // Batches are cut from the sorted thread list; each worker converts a batch (CPU, before it
    // takes a connection) and writes it in one transaction.
    const batches: string[][] = [];
    for (let i = 0; i < threadIds.length; i += batchSize)
      batches.push(threadIds.slice(i, i + batchSize));
    let next = 0;
    // One batch converts at a time, in batch order. Interleaved (every worker converting its
    // batch a few milliseconds at a time), all batches in flight finished converting together,
    // so their writes started together and this process then waited on Postgres; taking turns,
    // the first batch is written while the next one converts (decision I14).
    let converting: Promise<void> = Promise.resolve();
    const convertTurn = async (): Promise<() => void> => {
      const previous = converting;
      let release!: () => void;
      converting = new Promise<void>((resolve) => (release = resolve));
      await previous;
      return release;
    };
    const worker = async () => {
      while (next < batches.length) {
        if (signal?.aborted) {
          summary.interrupted = true;
          return;
        }
        const batch = batches[next++]!;
        const turn = convertTurn();
        // The journal lookup's round trip overlaps the conversion of the batch before.
        const fingerprints = await writer.journaled(batch, dryRun).catch(async (err: unknown) => {
          (await turn)();
          throw err;
        });
        // Each converted thread goes into the batch at once (encoded for COPY there, decision
        // I17); a dry run only counts it.
        const pending = dryRun ? undefined : writer.batch(batch.length);
        const release = await turn;
        let slice = performance.now();
        try {
          for (const threadId of batch) {
            // Conversion is synchronous CPU work; a batch of it would hold the event loop for
            // hundreds of milliseconds while the other workers' transactions wait for their
            // replies to be read. Yielding every few milliseconds lets each of their round trips
            // go on at once, so Postgres works while this process converts.
            if (performance.now() - slice >= YIELD_EVERY_MS) {
              await new Promise<void>((resolve) => setImmediate(resolve));
              slice = performance.now();
            }
            const t = assemble(threadId);
            if (!t) continue;
            const converted = await convert(t, fingerprints.get(threadId));
            if (!converted) continue;
            if (converted.rows && options.verify) verifyRows.push(converted.rows);
            if (converted.skipped) summary.skipped++;
            else if (converted.rows) {
              const r = converted.rows;
              if (pending) pending.add(r);
              else {
                summary.threadsImported++;
                summary.checkpointsImported += r.checkpoints.length;
                summary.writesImported += r.writes.length;
                summary.blobsImported += r.blobs.length;
              }
            }
          }
        } finally {
          release();
        }
        if (pending && pending.threads.length > 0) {
          const inserted = await writer.writeBatch(pending);
          for (const counts of inserted.values()) {
            if (counts.checkpoints + counts.writes + counts.blobs > 0) summary.threadsImported++;
            else summary.skipped++;
            summary.checkpointsImported += counts.checkpoints;
            summary.writesImported += counts.writes;
            summary.blobsImported += counts.blobs;
          }
        }
        done += batch.length;
        progress("import", done, threadIds.length);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(concurrency, Math.max(1, batches.length)) }, worker),
    );
    summary.conversions = Object.fromEntries(conversions);
    summary.threadsFound = threadsFound;
    logger.info({ threads: threadsFound, formats: summary.formats }, "source converted");

    if (options.verify && !dryRun && !summary.interrupted) {
      const saver =
        options.verifySaver ?? new PostgresCheckpointer(options.pool, { schema, serde });
      const mismatches: VerifyMismatch[] = [];
      let checked = 0;
      let checkpoints = 0;
      progress("verify", 0, verifyRows.length);
      for (const rows of verifyRows) {
        mismatches.push(...(await verifyThread(saver, serde, rows)));
        checkpoints += rows.checkpoints.length;
        progress("verify", ++checked, verifyRows.length);
      }
      summary.verify = {
        threads: checked,
        checkpoints,
        mismatches: mismatches.length,
        examples: mismatches.slice(0, 20),
      };
      for (const m of mismatches.slice(0, 20)) logger.warn({ ...m }, "verify mismatch");
    }
  } catch (err) {
    if (signal?.aborted && (err as Error)?.name === "AbortError") summary.interrupted = true;
    else
      throw err instanceof ThreadlineError
        ? err
        : new ThreadlineError("INTERNAL", `import failed: ${describeError(err)}`, { cause: err });
  } finally {
    if (rejects) await new Promise<void>((resolve) => rejects!.end(resolve));
  }
  summary.durationMs = Math.round(performance.now() - started);
  return summary;
}

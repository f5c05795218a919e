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
import { ReadSchedule, readOrder } from "./order.js";
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
  /**
   * Keys read (read phase) or threads handled (import/verify phases). Reading and importing
   * overlap (decision I21): `read` is reported until the first batch is written, `import` after.
   */
  done: number;
  /** Keys to read, or threads found (while the read goes on, the number of key groups). */
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
  /**
   * Threads converted a second time because a record of theirs sat under a key named after
   * another thread and was read after they converted (decision I21). Absent when none.
   */
  repairedThreads?: number;
  verify?: { threads: number; checkpoints: number; mismatches: number; examples: VerifyMismatch[] };
}

/** What a thread's conversion added to the summary's value-level counters. */
interface PlanCount {
  channelsWithoutValue: number;
  orphanWrites: number;
  /** Absent when empty: one of these is kept per thread for the whole run. */
  flags: ValueFlags | undefined;
}

/** What the summary counts of one converted thread. */
interface ThreadCount {
  /** It gained rows (a dry run: would gain); otherwise it counts as skipped. */
  imported: boolean;
  checkpoints: number;
  writes: number;
  blobs: number;
  /** Absent when the journal showed the thread imported (its values were not counted). */
  plan: PlanCount | undefined;
}

const NOTHING_COUNTED: ThreadCount = {
  imported: false,
  checkpoints: 0,
  writes: 0,
  blobs: 0,
  plan: undefined,
};

/** Longest stretch of conversion between two turns of the event loop (see the batch worker). */
const YIELD_EVERY_MS = 5;

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Imports LangGraph checkpoints from Redis into the Postgres checkpoint tables.
 *
 * Phases: SCAN the keyspace; read every key with a saver prefix (MGET, then TYPE and JSON.GET /
 * GET / HGETALL for what is not a STRING), grouped by the thread their names point to
 * (`order.ts`), and group the records by the thread id their documents name (the official savers'
 * documents wait as bytes, see `ingest.ts`); as each thread's keys are read, decode it with the
 * first format reader that recognises each record and convert it (history selection, full channel
 * values, versions, LangChain ids) and write threads in batched transactions with their journal
 * rows, while later threads are still being read; optionally verify. Threads that cannot be
 * converted are rejected and reported, and the run goes on. Holds the key names of the selection
 * and a few batches' documents in memory (decision I21).
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
    let events = new ThreadEvents(admitted, summary, (r) => {
      if (reading) recordInvalid.set(r.key, r);
      else reject({ threadId: null, key: r.key, formats: [], reason: r.reason });
    });
    let threadsFound = 0;

    /**
     * The thread ready to convert, or undefined: rejected (reported here), or holding no
     * checkpoint (writes or blobs of deleted threads, or a format excluded by --format).
     */
    const assemble = (threadId: string): ThreadSource | undefined => {
      const t = events.materialize(threadId);
      if (!t) return undefined;
      // A thread converted again (see the repair below) is counted once.
      const orphans = orphaned.get(threadId);
      const again = counted.has(threadId) || orphans !== undefined;
      if (t.rejection) {
        if (!again) threadsFound++;
        rejectedThreads.add(threadId);
        reject({
          threadId: t.threadId,
          key: t.rejection.key,
          formats: [...t.formats],
          reason: t.rejection.reason,
        });
        return undefined;
      }
      if (t.checkpoints.size === 0) {
        if (!again) {
          summary.orphanWrites += t.writes.size;
          orphaned.set(threadId, t.writes.size);
        }
        return undefined;
      }
      if (orphans !== undefined) {
        summary.orphanWrites -= orphans;
        orphaned.delete(threadId);
      }
      if (!counted.has(threadId)) threadsFound++;
      return t;
    };

    const writer = new ImportWriter(
      options.pool,
      schema,
      sourceLabel,
      options.copyMinRows !== undefined ? { copyMinRows: options.copyMinRows } : {},
    );
    const conversions: ValueFlags = new Map();
    const verifyRows = new Map<string, ThreadRows>();

    /**
     * What the summary holds of each converted thread, so that a thread converted again (the
     * repair below) replaces its first count instead of adding to it. In a real run the second
     * conversion's row counts are what it inserted on top of the first's rows.
     */
    const counted = new Map<string, ThreadCount>();
    /** Threads rejected, and threads that held no checkpoint (their writes counted orphans). */
    const rejectedThreads = new Set<string>();
    const orphaned = new Map<string, number>();
    const account = (threadId: string, c: ThreadCount, added: boolean) => {
      const before = counted.get(threadId);
      const now: ThreadCount =
        before && added
          ? {
              imported: before.imported || c.checkpoints + c.writes + c.blobs > 0,
              checkpoints: before.checkpoints + c.checkpoints,
              writes: before.writes + c.writes,
              blobs: before.blobs + c.blobs,
              plan: c.plan,
            }
          : c;
      const was = before ?? NOTHING_COUNTED;
      summary.checkpointsImported += now.checkpoints - was.checkpoints;
      summary.writesImported += now.writes - was.writes;
      summary.blobsImported += now.blobs - was.blobs;
      if (before) {
        if (before.imported) summary.threadsImported--;
        else summary.skipped--;
      }
      if (now.imported) summary.threadsImported++;
      else summary.skipped++;
      if (was.plan) {
        summary.channelsWithoutValue -= was.plan.channelsWithoutValue;
        summary.orphanWrites -= was.plan.orphanWrites;
        for (const [k, n] of was.plan.flags ?? []) addFlag(conversions, k, -n);
      }
      if (now.plan) {
        summary.channelsWithoutValue += now.plan.channelsWithoutValue;
        summary.orphanWrites += now.plan.orphanWrites;
        for (const [k, n] of now.plan.flags ?? []) addFlag(conversions, k, n);
      }
      counted.set(threadId, now);
    };
    let done = 0;

    // Plans a thread; serializes it unless the journal shows this exact source state imported
    // (then only a verify run needs its rows).
    const convert = async (
      t: ThreadSource,
      journaled: string | undefined,
    ): Promise<{ rows?: ThreadRows; skipped: boolean; plan: PlanCount } | undefined> => {
      try {
        const plan = planThread(t, history);
        const skipped = journaled === plan.fingerprint;
        const counts: PlanCount = {
          channelsWithoutValue: plan.channelsWithoutValue,
          orphanWrites: plan.orphanWrites,
          flags: plan.flags.size > 0 ? plan.flags : undefined,
        };
        if (skipped && !options.verify) return { skipped, plan: counts };
        const rows = await serializeThread(plan, serde);
        return { rows, skipped, plan: counts };
      } catch (err) {
        if (!isThreadlineError(err, "IMPORT_RECORD_INVALID")) throw err;
        rejectedThreads.add(t.threadId);
        reject({
          threadId: t.threadId,
          key: [...t.checkpoints.values()][0]?.key ?? "",
          formats: [...t.formats],
          reason: err.message,
        });
        return undefined;
      }
    };

    // Threads become ready as soon as every key that can name them has been read (decision
    // I21): the keys are read grouped by the thread their names point to, and the batches are
    // converted and written while later groups are still being read.
    const order = readOrder(scan.keys);
    const ready: string[] = [];
    let handedOut = 0;
    let readDone = false;
    let stop = false;
    let sleepers: Array<() => void> = [];
    const wake = () => {
      const s = sleepers;
      sleepers = [];
      for (const f of s) f();
    };
    const nextBatch = async (): Promise<string[] | undefined> => {
      for (;;) {
        if (stop) return undefined;
        const available = ready.length - handedOut;
        if (available >= batchSize || (readDone && available > 0)) {
          const batch = ready.slice(handedOut, handedOut + batchSize);
          handedOut += batch.length;
          wake(); // the read may be waiting for room
          return batch;
        }
        if (readDone) return undefined;
        await new Promise<void>((resolve) => sleepers.push(resolve));
      }
    };
    let converting: Promise<void> = Promise.resolve();
    const convertTurn = async (): Promise<() => void> => {
      const previous = converting;
      let release!: () => void;
      converting = new Promise<void>((resolve) => (release = resolve));
      await previous;
      return release;
    };
    const worker = async () => {
      for (;;) {
        if (signal?.aborted) {
          summary.interrupted = true;
          return;
        }
        const batch = await nextBatch();
        if (!batch) return;
        const turn = convertTurn();
        // The journal lookup's round trip overlaps the conversion of the batch before.
        const fingerprints = await writer.journaled(batch, dryRun).catch(async (err: unknown) => {
          (await turn)();
          throw err;
        });
        // Each converted thread goes into the batch at once (encoded for COPY there, decision
        // I17); a dry run only counts it.
        const pending = dryRun ? undefined : writer.batch(batch.length);
        const plans = new Map<string, PlanCount>();
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
            if (converted.rows && options.verify) verifyRows.set(threadId, converted.rows);
            if (converted.skipped) account(threadId, NOTHING_COUNTED, !dryRun);
            else if (converted.rows) {
              const r = converted.rows;
              if (pending) {
                pending.add(r);
                plans.set(threadId, converted.plan);
              } else
                account(
                  threadId,
                  {
                    imported: true,
                    checkpoints: r.checkpoints.length,
                    writes: r.writes.length,
                    blobs: r.blobs.length,
                    plan: converted.plan,
                  },
                  false,
                );
            }
          }
        } finally {
          release();
        }
        if (pending && pending.threads.length > 0) {
          const inserted = await writer.writeBatch(pending);
          for (const [threadId, c] of inserted)
            account(
              threadId,
              {
                imported: c.checkpoints + c.writes + c.blobs > 0,
                checkpoints: c.checkpoints,
                writes: c.writes,
                blobs: c.blobs,
                plan: plans.get(threadId),
              },
              true,
            );
        }
        done += batch.length;
        // Until the read is over the total is the number of key groups, about the threads.
        progress(
          "import",
          done,
          readDone ? ready.length : Math.max(ready.length, order.groups.length),
        );
      }
    };
    let workerError: { err: unknown } | undefined;
    // Once the workers are gone (done, interrupted or failed) the read has no one to wait for.
    const workers = Promise.all(Array.from({ length: concurrency }, worker)).then(
      () => {
        stop = true;
        wake();
      },
      (err: unknown) => {
        workerError = { err };
        stop = true;
        wake();
      },
    );

    // The read: records wait by thread, most as their bytes, decoded when their thread is
    // converted (I12, I18). Records that name no thread and cannot be converted are reported
    // once the read is done.
    const schedule = new ReadSchedule(order);
    let read = 0;
    let keysRead = 0;
    const readBatch = batchSize * 5;
    const readAhead = batchSize * Math.max(2, concurrency);
    let readError: { err: unknown } | undefined;
    try {
      for await (const records of readRecords(options.redis, order.keys, {
        batchSize: readBatch,
        signal,
      })) {
        if (stop) break;
        for (const record of records) {
          const threadId = events.add(record);
          if (threadId !== undefined) schedule.saw(record.key, threadId);
        }
        read += records.length;
        // readRecords yields the records of each `readBatch` keys of the order, in order.
        keysRead = Math.min(order.keys.length, keysRead + readBatch);
        const now = schedule.advance(keysRead);
        if (now.length > 0) {
          for (const t of now) ready.push(t);
          wake();
        }
        // The read's progress until the first batch is written; then the import's (the two overlap).
        if (done === 0) progress("read", read, scan.keys.length);
        // The read stays a few batches ahead of the conversion, so what waits in memory is those
        // batches' records, not the whole source.
        while (!stop && ready.length - handedOut >= readAhead)
          await new Promise<void>((resolve) => sleepers.push(resolve));
      }
    } catch (err) {
      // The batches in flight finish; no other one starts.
      readError = { err };
      stop = true;
    }
    // Threads that strays name convert last.
    if (!readError) for (const t of schedule.finish()) ready.push(t);
    reading = false;
    readDone = true;
    wake();
    summary.readMs = Math.round(performance.now() - started);
    if (!readError) logger.info({ threads: ready.length }, "source read");
    for (const r of recordInvalid.values())
      reject({ threadId: null, key: r.key, formats: [], reason: r.reason });
    // Record-level rejects count among the threads found, as they always have.
    threadsFound += recordInvalid.size;
    if (done > 0) progress("import", done, ready.length);
    await workers;
    if (readError) throw readError.err;
    if (workerError) throw workerError.err;

    // Records that arrived after their thread converted (strays, see order.ts) wait in `events`
    // still. Each such thread is read again whole and converted again: its rows go in with ON
    // CONFLICT DO NOTHING as always, so only what the first conversion missed is added, and
    // `account` replaces the thread's first count.
    const repairs = summary.interrupted
      ? []
      : events.threadIds().filter((t) => !rejectedThreads.has(t));
    if (repairs.length > 0) {
      logger.info({ threads: repairs.length }, "threads read again for records read after them");
      // What waits is what the first conversion missed: decoding it here counts it (formats,
      // unknown records) once; everything read again below was counted then.
      for (const t of repairs) events.materialize(t);
      const scratch = { unknownKeys: 0, excludedKeys: 0, formats: {} };
      events = new ThreadEvents(admitted, scratch, () => undefined);
      const keys = [...new Set(repairs.flatMap((t) => schedule.keysOf(t)))];
      for await (const records of readRecords(options.redis, keys, {
        batchSize: readBatch,
        signal,
      }))
        for (const record of records) events.add(record);
      for (const t of repairs) ready.push(t);
      stop = false;
      await Promise.all(Array.from({ length: concurrency }, worker));
      summary.repairedThreads = repairs.length;
    }
    summary.conversions = Object.fromEntries([...conversions].filter(([, n]) => n !== 0));
    summary.threadsFound = threadsFound;
    logger.info({ threads: threadsFound, formats: summary.formats }, "source converted");

    if (options.verify && !dryRun && !summary.interrupted) {
      const saver =
        options.verifySaver ?? new PostgresCheckpointer(options.pool, { schema, serde });
      const mismatches: VerifyMismatch[] = [];
      let checked = 0;
      let checkpoints = 0;
      progress("verify", 0, verifyRows.size);
      for (const rows of verifyRows.values()) {
        mismatches.push(...(await verifyThread(saver, serde, rows)));
        checkpoints += rows.checkpoints.length;
        progress("verify", ++checked, verifyRows.size);
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

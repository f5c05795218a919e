import { z } from "zod";
import { parseDuration } from "./duration.js";

const duration = (example: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
    const ms = typeof value === "string" ? parseDuration(value) : undefined;
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected a duration like "${example}" (units ms, s, m, h, d, w), got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return ms;
  });

/** Schema names are validated, then always escaped, before they reach SQL. */
export const SCHEMA_NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Postgres' own schemas: `information_schema`, and every `pg_*` name (pg_catalog, pg_toast,
 * pg_temp_N; Postgres reserves the prefix). Threadline's tables never belong there.
 */
export const RESERVED_SCHEMA_RE = /^(?:pg_|information_schema$)/;

/** Why `name` cannot be a Threadline schema, or undefined when it can. */
export function schemaNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || !SCHEMA_NAME_RE.test(name)) {
    return "a schema name must match ^[a-z_][a-z0-9_]{0,62}$ (lowercase letters, digits, underscores)";
  }
  if (RESERVED_SCHEMA_RE.test(name)) {
    return `${name} is a Postgres system schema (information_schema and pg_* are reserved): choose another name, e.g. threadline`;
  }
  return undefined;
}

export const schemaName = z.string().superRefine((name, ctx) => {
  const problem = schemaNameProblem(name);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

const strict = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);

export const configSchema = strict({
  database: strict({
    /** Connection string; from DATABASE_URL. Empty means "use the embedded database". */
    url: z.string().optional(),
    /**
     * A direct connection string (bypassing a transaction-mode pooler such as PgBouncer) for
     * what needs a real session: migrations, and LISTEN/NOTIFY. Unset = `url` is used for all.
     */
    directUrl: z.string().optional(),
    schema: schemaName.default("public"),
    applicationName: z.string().min(1).max(63).default("threadline"),
    statementTimeout: duration("30s").default(30_000),
    connectTimeout: duration("5s").default(5_000),
    preparedStatements: z.boolean().default(true),
    keepAlive: z.boolean().default(true),
    /**
     * Client-side limit on one statement (fires when the network drops packets silently);
     * unset = statementTimeout + 5 s.
     */
    queryTimeout: duration("60s").optional(),
    pool: strict({
      size: z.number().int().min(1).max(1000).default(10),
      maxOverflow: z.number().int().min(0).max(1000).default(0),
      idleTimeout: duration("30s").default(30_000),
      recycle: duration("30m").default(1_800_000),
    }).prefault({}),
    retry: strict({
      attempts: z.number().int().min(1).max(20).default(4),
      baseDelay: duration("50ms").default(50),
      maxDelay: duration("2s").default(2_000),
    }).prefault({}),
    embedded: strict({
      dataDir: z.string().min(1).default("./.threadline/data"),
    }).prefault({}),
  }).prefault({}),
  checkpoint: strict({
    storage: z.enum(["delta", "full"]).default("delta"),
    /** Store a step's pending writes with the next checkpoint of the thread (one statement). */
    coalesceWrites: z.boolean().default(true),
    /** Threads (x namespaces) whose array channels are remembered as delta bases; 0 = none. */
    deltaCacheSize: z.number().int().min(0).default(10_000),
    /** Deltas stacked on one full value before a full value is written again. */
    maxDeltaDepth: z.number().int().min(1).max(100_000).default(256),
    /** Bytes the remembered delta bases may keep alive (64 MiB); LRU threads are forgotten beyond. */
    deltaCacheMaxBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024 * 1024),
  }).prefault({}),
  fallback: strict({
    enabled: z.boolean().default(true),
    maxPendingEntries: z.number().int().min(1).default(100_000),
    maxPendingBytes: z
      .number()
      .int()
      .min(1024)
      .default(256 * 1024 * 1024),
    probeInterval: duration("1s").default(1_000),
    probeMaxInterval: duration("30s").default(30_000),
    /** A checkpoint call unanswered this long counts as an outage (black-holed network). */
    operationTimeout: duration("15s").default(15_000),
    /** Threads whose latest checkpoints are cached so they read whole during an outage; 0 = off. */
    cacheMaxThreads: z.number().int().min(0).default(10_000),
    /** Bytes the cache of already-durable checkpoints may hold (64 MiB). */
    cacheMaxBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024 * 1024),
    /** Durable checkpoints cached per thread and namespace (the latest and its parent). */
    cacheCheckpointsPerNamespace: z.number().int().min(1).max(1000).default(2),
    /** Operations replayed at once after an outage (different threads; one thread stays in order). */
    replayConcurrency: z.number().int().min(1).max(256).default(4),
    /** Retries of a primary call on connection errors before serving from memory. */
    retry: strict({
      attempts: z.number().int().min(1).max(20).default(2),
      baseDelay: duration("10ms").default(10),
      maxDelay: duration("50ms").default(50),
    }).prefault({}),
  }).prefault({}),
  cleanup: strict({
    enabled: z.boolean().default(true),
    schedule: z.string().min(1).default("*/15 * * * *"),
    ttl: duration("7d").default(7 * 86_400_000),
    batchSize: z.number().int().min(1).max(100_000).default(1000),
    maxRuntime: duration("5m").default(300_000),
    /** After each batch, pause this many times the batch's duration (throttle; 0 = flat out). */
    pause: z.number().min(0).max(100).default(2),
  }).prefault({}),
  history: strict({
    keepLatest: z.number().int().min(0).default(0),
  }).prefault({}),
  server: strict({
    port: z.number().int().min(0).max(65_535).default(8787),
    /**
     * Address to bind. Unset: loopback (127.0.0.1) without API keys, all interfaces (0.0.0.0)
     * with them, so an open service is never reachable from the network by accident.
     */
    host: z.string().min(1).optional(),
    bodyLimit: z.string().min(1).default("1mb"),
    shutdownTimeout: duration("10s").default(10_000),
    rateLimit: strict({
      window: duration("1m").default(60_000),
      max: z.number().int().min(1).default(120),
    }).prefault({}),
    /** Express `trust proxy`: true behind one reverse proxy, so rate limits see client IPs. */
    trustProxy: z.boolean().default(false),
    cors: strict({
      /**
       * Browser origins allowed to call every route (`https://app.example.com`, or `*` for any);
       * empty (default) sends no CORS headers, so browsers allow same-origin calls only.
       */
      origins: z
        .array(
          z
            .string()
            .regex(
              /^(\*|https?:\/\/[^/\s]+)$/,
              'an origin is scheme://host[:port] without a path (e.g. "http://localhost:5173"), or "*"',
            ),
        )
        .default([]),
      /** How long browsers may cache a preflight answer. */
      maxAge: duration("10m").default(600_000),
    }).prefault({}),
  }).prefault({}),
  runs: strict({
    /** Runs this instance executes at once (background, streamed and waited runs alike). */
    concurrency: z.number().int().min(1).max(1000).default(10),
    /** How often a running run renews its heartbeat (and reads a cancel request). */
    heartbeatInterval: duration("2s").default(2_000),
    /**
     * A running run whose heartbeat is older than this belongs to a dead worker: any instance
     * marks it `error` and frees its thread. Must exceed twice heartbeatInterval.
     */
    staleAfter: duration("30s").default(30_000),
    /** Workers look for pending runs this often even without a notification. */
    pollInterval: duration("1s").default(1_000),
    /** Events of an ended run are kept this long for join and resume, then deleted. */
    eventRetention: duration("1h").default(3_600_000),
  })
    .superRefine((runs, ctx) => {
      if (runs.staleAfter <= runs.heartbeatInterval * 2)
        ctx.addIssue({
          code: "custom",
          path: ["staleAfter"],
          message: `must exceed twice runs.heartbeatInterval (${runs.heartbeatInterval} ms), or live runs are marked error; raise staleAfter or lower heartbeatInterval`,
        });
    })
    .prefault({}),
  auth: strict({
    apiKeys: z.array(z.string().min(16, "API keys must be at least 16 characters")).default([]),
  }).prefault({}),
  model: strict({
    provider: z.enum(["offline", "openai"]).default("offline"),
    baseUrl: z.url().optional(),
    name: z.string().min(1).default("gpt-4o-mini"),
    apiKey: z.string().optional(),
    temperature: z.number().min(0).max(2).default(0.2),
    timeout: duration("60s").default(60_000),
    /** Retries of a failed model request before the turn fails (OpenAI-compatible provider). */
    maxRetries: z.number().int().min(0).max(10).default(2),
    /** Pause between the offline model's tokens, in ms; 0 streams as fast as possible. */
    offlineTokenDelay: z.number().int().min(0).max(10_000).default(0),
    /** System prompt sent before the conversation on every model call (not stored in the thread). */
    systemPrompt: z.string().min(1).optional(),
  }).prefault({}),
  /**
   * User LangGraph graphs to serve: name -> "path:export" (paths relative to the config file).
   * `--graph` flags and a langgraph.json in the working directory add to these.
   */
  graphs: z.record(z.string(), z.string().min(1)).default({}),
  log: strict({
    level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  }).prefault({}),
});

/** The validated configuration. Durations are milliseconds. */
export type ThreadlineConfig = z.output<typeof configSchema>;
export type ThreadlineConfigInput = z.input<typeof configSchema>;

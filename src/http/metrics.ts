import type { RunnableConfig } from "@langchain/core/runnables";
import type {
  BaseCheckpointSaver,
  ChannelVersions,
  Checkpoint,
  CheckpointListOptions,
  CheckpointMetadata,
  CheckpointTuple,
  DeltaChannelHistory,
  PendingWrite,
} from "@langchain/langgraph-checkpoint";
import type { Request, RequestHandler, Response } from "express";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { ForwardingSaver } from "../checkpoint/forwarding-saver.js";
import { classifyDbError } from "../db/errors.js";
import type { PoolStats } from "../db/pool.js";

const PREFIX = Symbol("threadline.routePrefix");

/**
 * Records where a router is mounted, for {@link routeLabel}. Express restores `req.baseUrl` when an
 * error leaves a router, so the mount is kept on the request itself.
 */
export function routePrefix(prefix: string): RequestHandler {
  return (req, _res, next) => {
    (req as Request & { [PREFIX]?: string })[PREFIX] = prefix;
    next();
  };
}

/**
 * The `route` label of a request: the matched route's template under its mount (`/api/chat`,
 * `/api/chat/:id/messages`), the same for every status, including body-parser and validation
 * failures; `unmatched` when no route matched (404s), so label cardinality stays bounded.
 */
export function routeLabel(req: Request, _res?: Response): string {
  const route = req.route as { path?: unknown } | undefined;
  if (!route || typeof route.path !== "string") return "unmatched";
  const prefix = (req as Request & { [PREFIX]?: string })[PREFIX] ?? req.baseUrl;
  return `${prefix}${route.path}`;
}

/** The service's Prometheus metrics, registered on one registry. */
export interface ServiceMetrics {
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route" | "status">;
  chatTurns: Counter<"outcome">;
  chatTurnDuration: Histogram<"outcome">;
  activeStreams: Gauge;
  checkpointOps: Counter<"operation" | "outcome">;
  checkpointDuration: Histogram<"operation">;
}

/** Sources read at scrape time. */
export interface MetricSources {
  poolStats?: () => PoolStats;
  fallbackStatus?: () => { mode: "primary" | "fallback"; pending: number };
}

/**
 * Registers the service metrics on `registry`. Re-registering (a second app on the same
 * registry, as in restart tests) replaces the earlier metrics instead of throwing.
 */
export function registerServiceMetrics(registry: Registry, sources: MetricSources): ServiceMetrics {
  const make = <T>(name: string, create: () => T): T => {
    registry.removeSingleMetric(name);
    return create();
  };
  const registers = [registry];
  const metrics: ServiceMetrics = {
    httpRequests: make(
      "threadline_http_requests_total",
      () =>
        new Counter({
          name: "threadline_http_requests_total",
          help: "HTTP requests by method, route and status",
          labelNames: ["method", "route", "status"] as const,
          registers,
        }),
    ),
    httpDuration: make(
      "threadline_http_request_duration_seconds",
      () =>
        new Histogram({
          name: "threadline_http_request_duration_seconds",
          help: "HTTP request duration until the response ended (whole stream for chats)",
          labelNames: ["method", "route", "status"] as const,
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
          registers,
        }),
    ),
    chatTurns: make(
      "threadline_chat_turns_total",
      () =>
        new Counter({
          name: "threadline_chat_turns_total",
          help: "Chat turns by outcome (completed, error, client_aborted, shutdown_aborted)",
          labelNames: ["outcome"] as const,
          registers,
        }),
    ),
    chatTurnDuration: make(
      "threadline_chat_turn_duration_seconds",
      () =>
        new Histogram({
          name: "threadline_chat_turn_duration_seconds",
          help: "Duration of a chat turn from request to the end of its stream",
          labelNames: ["outcome"] as const,
          buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
          registers,
        }),
    ),
    activeStreams: make(
      "threadline_chat_active_streams",
      () =>
        new Gauge({
          name: "threadline_chat_active_streams",
          help: "Chat streams in flight",
          registers,
        }),
    ),
    checkpointOps: make(
      "threadline_checkpoint_operations_total",
      () =>
        new Counter({
          name: "threadline_checkpoint_operations_total",
          help: "Checkpointer operations issued by the service, by operation and outcome",
          labelNames: ["operation", "outcome"] as const,
          registers,
        }),
    ),
    checkpointDuration: make(
      "threadline_checkpoint_operation_duration_seconds",
      () =>
        new Histogram({
          name: "threadline_checkpoint_operation_duration_seconds",
          help: "Checkpointer operation duration",
          labelNames: ["operation"] as const,
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
          registers,
        }),
    ),
  };

  const { poolStats, fallbackStatus } = sources;
  if (poolStats) {
    make(
      "threadline_db_pool_connections",
      () =>
        new Gauge({
          name: "threadline_db_pool_connections",
          help: "Database pool connections by state (total, idle, waiting clients, max)",
          labelNames: ["state"] as const,
          registers,
          collect() {
            const s = poolStats();
            this.set({ state: "total" }, s.total);
            this.set({ state: "idle" }, s.idle);
            this.set({ state: "waiting" }, s.waiting);
            this.set({ state: "max" }, s.max);
          },
        }),
    );
  }
  // FallbackCheckpointer users usually register its own metrics (registerFallbackMetrics, same
  // names); these read `fallbackStatus` only when nobody has.
  const ifAbsent = (name: string, help: string, read: () => number) => {
    if (registry.getSingleMetric(name)) return;
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  ifAbsent(
    "threadline_fallback_mode",
    "1 while checkpoints go to the in-memory fallback, 0 on the primary (Postgres)",
    () => (fallbackStatus?.().mode === "fallback" ? 1 : 0),
  );
  ifAbsent(
    "threadline_fallback_pending_entries",
    "Checkpoints and writes held in memory, not yet in Postgres",
    () => fallbackStatus?.().pending ?? 0,
  );
  return metrics;
}

/**
 * Counts and times every checkpointer operation and forwards it, arguments unchanged, to `inner`.
 * Wrapping (rather than asking each saver to report) measures the official saver, ours and the
 * fallback the same way. Extends {@link ForwardingSaver}, so a method this class does not observe
 * (`getNextVersion`, or one a later LangGraph adds) is still forwarded.
 */
export class InstrumentedCheckpointer extends ForwardingSaver {
  constructor(
    inner: BaseCheckpointSaver,
    private readonly metrics: Pick<ServiceMetrics, "checkpointOps" | "checkpointDuration">,
  ) {
    super(inner);
  }

  private async measure<T>(operation: string, op: () => Promise<T>): Promise<T> {
    const end = this.metrics.checkpointDuration.startTimer({ operation });
    try {
      const result = await op();
      this.metrics.checkpointOps.inc({ operation, outcome: "ok" });
      return result;
    } catch (err) {
      this.metrics.checkpointOps.inc({ operation, outcome: outcomeOf(err) });
      throw err;
    } finally {
      end();
    }
  }

  override getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    return this.measure("getTuple", () => super.getTuple(config));
  }

  override async *list(
    config: RunnableConfig,
    options?: CheckpointListOptions,
  ): AsyncGenerator<CheckpointTuple> {
    const end = this.metrics.checkpointDuration.startTimer({ operation: "list" });
    let outcome = "ok";
    try {
      yield* super.list(config, options);
    } catch (err) {
      outcome = outcomeOf(err);
      throw err;
    } finally {
      this.metrics.checkpointOps.inc({ operation: "list", outcome });
      end();
    }
  }

  override put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    return this.measure("put", () => super.put(config, checkpoint, metadata, newVersions));
  }

  override putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath?: string,
  ): Promise<void> {
    return this.measure("putWrites", () => super.putWrites(config, writes, taskId, taskPath));
  }

  override deleteThread(threadId: string): Promise<void> {
    return this.measure("deleteThread", () => super.deleteThread(threadId));
  }

  override getDeltaChannelHistory(options: {
    config: RunnableConfig;
    channels: string[];
  }): Promise<Record<string, DeltaChannelHistory>> {
    return this.measure("getDeltaChannelHistory", () => super.getDeltaChannelHistory(options));
  }
}

function outcomeOf(err: unknown): "unavailable" | "error" {
  return classifyDbError(err) === "DB_UNAVAILABLE" ? "unavailable" : "error";
}

import { Router, type Request } from "express";
import type { CleanupLastRun } from "../cleanup/schedule.js";
import type { ThreadlineConfig } from "../config/schema.js";
import type { Database } from "../db/database.js";
import { toThreadlineError } from "../db/errors.js";
import { quoteSchema } from "../db/identifier.js";
import { ThreadlineError } from "../errors.js";
import { principalOf } from "./auth.js";
import type { ServiceState } from "./service-state.js";
import { dbHealth, type DbHealth, type FallbackStatus } from "./health.js";
import type { ThreadOwners } from "./owners.js";

/** `GET /api/status`: what the page's ops panel shows, from the same sources as health/metrics. */
export interface ServiceStatus {
  database: DbHealth & {
    kind: "postgres" | "embedded" | "none";
    /** Serialized bytes held by the fallback (when it runs). */
    pendingBytes?: number;
    /** When the current fallback mode began (ISO time). */
    since?: string;
  };
  cleanup: {
    enabled: boolean;
    /** Cron expression, UTC. */
    schedule: string;
    /** Idle time after which a thread is deleted, in milliseconds. */
    ttlMs: number;
    /** The last sweep that ended in this process; null before the first. */
    lastRun: CleanupRunStatus | null;
  };
}

/** One sweep as the page shows it. Error texts are the typed codes' messages, no SQL. */
export interface CleanupRunStatus {
  at: string;
  status: "success" | "skipped" | "failure";
  threadsDeleted?: number;
  checkpointsDeleted?: number;
  historyCheckpointsDeleted?: number;
  durationMs?: number;
  complete?: boolean;
  reason?: string;
  error?: string;
}

/** `GET /api/status/threads/:id`: what one thread occupies. */
export interface ThreadStorage {
  threadId: string;
  checkpoints: number;
  writes: number;
  blobs: number;
  /** Stored (compressed) size of the payload columns, in bytes. */
  bytes: number;
  /** Last activity on the database clock (ISO time); null while nothing is stored. */
  lastActivity: string | null;
  /** `lastActivity + cleanup.ttl` when the sweep is on: from then on the next sweep deletes it. */
  expiresAt: string | null;
}

/** What the status routes need. */
export interface StatusDeps {
  config: ThreadlineConfig;
  state: ServiceState;
  db?: Database;
  fallbackStatus?: () => FallbackStatus;
  cleanupStatus?: () => CleanupLastRun | undefined;
  owners?: ThreadOwners;
}

function runStatus(last: CleanupLastRun): CleanupRunStatus {
  const at = last.at.toISOString();
  const o = last.outcome;
  if (o.status === "success") {
    const r = o.result;
    return {
      at,
      status: "success",
      threadsDeleted: r.threadsDeleted,
      checkpointsDeleted: r.checkpointsDeleted,
      historyCheckpointsDeleted: r.historyCheckpointsDeleted,
      durationMs: Math.round(r.durationMs),
      complete: r.complete,
    };
  }
  if (o.status === "skipped") return { at, status: "skipped", reason: o.reason };
  return { at, status: "failure", error: o.error.code };
}

/** Thread ids the Agent Server and the chat API accept: bounded, printable. */
const THREAD_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}$/;

/**
 * `GET /api/status` and `GET /api/status/threads/:id` (behind the API key like the rest of
 * `/api`). A thread of another key is 404, as everywhere.
 */
export function statusRoutes(deps: StatusDeps): Router {
  const router = Router();
  const { config } = deps;
  const schema = quoteSchema(config.database.schema);
  // One statement per request, every subquery filtered by thread_id (Citus-routable).
  const storageSql = `SELECT
      (SELECT count(*) FROM ${schema}.checkpoints WHERE thread_id = $1)::int AS checkpoints,
      (SELECT coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)), 0)
         FROM ${schema}.checkpoints WHERE thread_id = $1)::bigint AS checkpoint_bytes,
      (SELECT count(*) FROM ${schema}.checkpoint_writes WHERE thread_id = $1)::int AS writes,
      (SELECT coalesce(sum(pg_column_size(blob)), 0)
         FROM ${schema}.checkpoint_writes WHERE thread_id = $1)::bigint AS write_bytes,
      (SELECT count(*) FROM ${schema}.checkpoint_blobs WHERE thread_id = $1)::int AS blobs,
      (SELECT coalesce(sum(pg_column_size(blob)), 0)
         FROM ${schema}.checkpoint_blobs WHERE thread_id = $1)::bigint AS blob_bytes,
      (SELECT last_activity FROM ${schema}.checkpoint_threads WHERE thread_id = $1) AS last_activity,
      (SELECT expires_at FROM ${schema}.agent_threads WHERE thread_id = $1) AS own_expires_at`;

  router.get("/", async (_req, res, next) => {
    try {
      const health = await dbHealth(deps);
      const fallback = deps.fallbackStatus?.();
      const last = deps.cleanupStatus?.();
      const body: ServiceStatus = {
        database: {
          ...health,
          kind: deps.db?.kind ?? "none",
          ...(fallback?.pendingBytes !== undefined ? { pendingBytes: fallback.pendingBytes } : {}),
          ...(fallback?.since !== undefined ? { since: fallback.since } : {}),
        },
        cleanup: {
          enabled: config.cleanup.enabled,
          schedule: config.cleanup.schedule,
          ttlMs: config.cleanup.ttl,
          lastRun: last ? runStatus(last) : null,
        },
      };
      res.setHeader("cache-control", "no-store");
      res.json(body);
    } catch (err) {
      next(err);
    }
  });

  router.get("/threads/:id", async (req: Request<{ id: string }>, res, next) => {
    try {
      const threadId = req.params.id;
      if (!THREAD_ID_RE.test(threadId))
        throw new ThreadlineError("INVALID_INPUT", "thread id: 1-256 of A-Z a-z 0-9 _ . : -");
      if (!deps.db) throw new ThreadlineError("NOT_FOUND", "no database: no stored threads");
      const principal = principalOf(res.locals);
      if (deps.owners && principal) {
        const owner = await deps.owners.ownerOf(threadId);
        if (owner !== undefined && !(await deps.owners.isOwner(threadId, principal.keyHash)))
          throw new ThreadlineError("NOT_FOUND", `thread ${threadId} not found`);
      }
      let row: Record<string, unknown> | undefined;
      try {
        ({
          rows: [row],
        } = await deps.db.pool.query<Record<string, unknown>>(storageSql, [threadId]));
      } catch (err) {
        throw toThreadlineError(err, "reading thread storage");
      }
      const checkpoints = Number(row?.checkpoints ?? 0);
      const lastActivity =
        row?.last_activity instanceof Date ? row.last_activity.toISOString() : null;
      // A thread with nothing stored yet (just created, or unknown) occupies nothing: 200, zeros.
      const body: ThreadStorage = {
        threadId,
        checkpoints,
        writes: Number(row?.writes ?? 0),
        blobs: Number(row?.blobs ?? 0),
        bytes:
          Number(row?.checkpoint_bytes ?? 0) +
          Number(row?.write_bytes ?? 0) +
          Number(row?.blob_bytes ?? 0),
        lastActivity,
        // A thread with its own ttl (Agent Server) expires on it, the others on cleanup.ttl.
        expiresAt: !config.cleanup.enabled
          ? null
          : row?.own_expires_at instanceof Date
            ? row.own_expires_at.toISOString()
            : lastActivity
              ? new Date(Date.parse(lastActivity) + config.cleanup.ttl).toISOString()
              : null,
      };
      res.setHeader("cache-control", "no-store");
      res.json(body);
    } catch (err) {
      next(err);
    }
  });
  return router;
}

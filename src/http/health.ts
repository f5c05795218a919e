import { Router } from "express";
import type { Database } from "../db/database.js";
import type { PoolStats } from "../db/pool.js";
import type { ServiceState } from "./service-state.js";

/** What the checkpointer's fallback reports (FallbackCheckpointer.status()). */
export interface FallbackStatus {
  mode: "primary" | "fallback";
  /** Checkpoints and writes held in memory, not yet in Postgres. */
  pending: number;
  /** Their serialized size in bytes. */
  pendingBytes?: number;
  /** When the current mode began (ISO time). */
  since?: string;
}

/** `GET /health/db` body (README, "Endpoints"; a public contract). */
export interface DbHealth {
  status: "ok" | "degraded" | "down";
  mode: "primary" | "fallback";
  latencyMs: number;
  pool: PoolStats;
  pending: number;
}

/** What the health routes need. */
export interface HealthDeps {
  db?: Database;
  fallbackStatus?: () => FallbackStatus;
  state: ServiceState;
  /** Give up on the database ping after this many ms. Default 2 000. */
  pingTimeoutMs?: number;
}

/** Runs `SELECT 1` and returns whether it answered in time and how long it took. */
async function ping(db: Database, timeoutMs: number): Promise<{ ok: boolean; latencyMs: number }> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      db.pool.query("SELECT 1"),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("ping timed out")), timeoutMs);
      }),
    ]);
    return { ok: true, latencyMs: Math.round((performance.now() - start) * 100) / 100 };
  } catch {
    return { ok: false, latencyMs: Math.round(performance.now() - start) };
  } finally {
    clearTimeout(timer);
  }
}

/** Computes `/health/db`: ok, degraded (fallback in use or backlog) or down (no way to write). */
export async function dbHealth(deps: HealthDeps): Promise<DbHealth> {
  const fallback = deps.fallbackStatus?.();
  const mode = fallback?.mode ?? "primary";
  const pending = fallback?.pending ?? 0;
  const pool = deps.db?.stats() ?? { total: 0, idle: 0, waiting: 0, max: 0 };
  if (!deps.db)
    return { status: mode === "primary" ? "ok" : "degraded", mode, latencyMs: 0, pool, pending };
  const { ok, latencyMs } = await ping(deps.db, deps.pingTimeoutMs ?? 2_000);
  const status = ok
    ? mode === "primary" && pending === 0
      ? "ok"
      : "degraded"
    : fallback
      ? "degraded"
      : "down";
  return { status, mode, latencyMs, pool: deps.db.stats(), pending };
}

/** `/health/live`, `/health/ready`, `/health/db`. None of them needs an API key. */
export function healthRoutes(deps: HealthDeps): Router {
  const router = Router();
  router.get("/live", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/ready", async (_req, res) => {
    if (deps.state.draining) {
      res.status(503).json({ status: "draining" });
      return;
    }
    // With the fallback on, a Postgres outage is survivable: stay in rotation.
    if (deps.db && !deps.fallbackStatus) {
      const { ok } = await ping(deps.db, deps.pingTimeoutMs ?? 2_000);
      if (!ok) {
        res.status(503).json({ status: "database unavailable" });
        return;
      }
    }
    res.json({ status: "ready" });
  });
  router.get("/db", async (_req, res) => {
    const health = await dbHealth(deps);
    res.status(health.status === "down" ? 503 : 200).json(health);
  });
  return router;
}

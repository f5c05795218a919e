import type { ServiceStatus, ThreadStorage } from "../api.js";
import { bytes, dateTime, duration, fromNow } from "../format.js";

interface OpsPanelProps {
  status: ServiceStatus | null;
  storage: ThreadStorage | null;
  error: string | null;
}

/** Database mode, pending fallback writes, pool, last TTL sweep, storage of the open thread. */
export function OpsPanel({ status, storage, error }: OpsPanelProps) {
  const db = status?.database;
  const cleanup = status?.cleanup;
  const run = cleanup?.lastRun;
  return (
    <section className="panel ops" aria-labelledby="ops-title">
      <h2 id="ops-title">Operations</h2>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
      {db ? (
        <dl aria-label="Database">
          <dt>Database</dt>
          <dd data-testid="db-mode">
            <span className={`badge badge-${db.status}`}>{db.mode}</span>{" "}
            {db.kind === "embedded" ? "embedded (development)" : "PostgreSQL"} · {db.status}
            {db.mode === "primary" ? ` · ${db.latencyMs} ms` : ""}
          </dd>
          <dt>Pending writes</dt>
          <dd data-testid="db-pending">
            {db.pending}
            {db.pendingBytes !== undefined ? ` (${bytes(db.pendingBytes)})` : ""}
            {db.mode === "fallback" && db.since ? ` since ${fromNow(db.since)}` : ""}
          </dd>
          <dt>Pool</dt>
          <dd data-testid="db-pool">
            {db.pool.total} open / {db.pool.max} max · {db.pool.idle} idle · {db.pool.waiting}{" "}
            waiting
          </dd>
        </dl>
      ) : null}
      {cleanup ? (
        <dl aria-label="TTL cleanup">
          <dt>TTL cleanup</dt>
          <dd>
            {cleanup.enabled
              ? `threads idle over ${duration(cleanup.ttlMs)} are deleted (${cleanup.schedule}, UTC)`
              : "off in this service"}
          </dd>
          <dt>Last run</dt>
          <dd data-testid="cleanup-last">
            {run ? (
              <>
                <time dateTime={run.at} title={dateTime(run.at)}>
                  {fromNow(run.at)}
                </time>
                {": "}
                {run.status === "success"
                  ? `deleted ${run.threadsDeleted ?? 0} threads, ${run.checkpointsDeleted ?? 0} checkpoints` +
                    (run.historyCheckpointsDeleted
                      ? `, ${run.historyCheckpointsDeleted} old checkpoints`
                      : "") +
                    (run.durationMs !== undefined ? ` in ${run.durationMs} ms` : "")
                  : run.status === "skipped"
                    ? `skipped (${run.reason ?? "another instance"})`
                    : `failed: ${run.error ?? "unknown error"}`}
              </>
            ) : (
              "none since the service started"
            )}
          </dd>
        </dl>
      ) : null}
      {storage ? (
        <dl aria-label="Open thread storage">
          <dt>Open thread</dt>
          <dd data-testid="thread-storage">
            {bytes(storage.bytes)} in {storage.checkpoints} checkpoints, {storage.writes} writes,{" "}
            {storage.blobs} blobs
          </dd>
          <dt>Last activity</dt>
          <dd>
            {storage.lastActivity ? fromNow(storage.lastActivity) : "none"}
            {storage.expiresAt ? ` · deleted ${fromNow(storage.expiresAt)}` : ""}
          </dd>
        </dl>
      ) : null}
      {!status && !error ? <p className="muted">Loading...</p> : null}
    </section>
  );
}

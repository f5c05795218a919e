-- 0013 run queue
-- Runs that outlive a request (issue 14): agent_runs becomes the queue every instance works from,
-- and threadline_run_events keeps each run's SSE events for join and resume.
--
-- A run moves pending -> running -> success | error | timeout | interrupted. A worker claims the
-- oldest pending run of a thread that has no running run (`FOR UPDATE SKIP LOCKED`), sets
-- worker_id and heartbeat_at, and renews heartbeat_at while the graph runs. A running run whose
-- heartbeat is older than the service's runs.staleAfter belongs to a dead worker: any instance
-- marks it error and frees its thread. cancel_action ('interrupt' | 'rollback') asks the worker
-- executing the run to stop; the worker reads it from its heartbeat and from a NOTIFY.
--
-- One running run per thread is a unique index, so no interleaving of instances can run two.
-- Every table is keyed by thread_id first, like the checkpoint tables (Citus distribution).
ALTER TABLE :SCHEMA.agent_runs
  ADD COLUMN IF NOT EXISTS worker_id TEXT,
  ADD COLUMN IF NOT EXISTS heartbeat_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS started_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS ended_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS cancel_action TEXT
    CHECK (cancel_action IS NULL OR cancel_action IN ('interrupt', 'rollback')),
  ADD COLUMN IF NOT EXISTS error JSONB,
  -- False once the retention sweep removed the run's events.
  ADD COLUMN IF NOT EXISTS events_kept BOOLEAN NOT NULL DEFAULT true;

-- At most one running run per thread, whatever instance claimed it.
CREATE UNIQUE INDEX IF NOT EXISTS agent_runs_one_running_idx
  ON :SCHEMA.agent_runs (thread_id) WHERE status = 'running';

-- The claim scans pending runs oldest first.
CREATE INDEX IF NOT EXISTS agent_runs_pending_idx
  ON :SCHEMA.agent_runs (created_at) WHERE status = 'pending';

-- The reaper reads running runs by heartbeat.
CREATE INDEX IF NOT EXISTS agent_runs_heartbeat_idx
  ON :SCHEMA.agent_runs (heartbeat_at) WHERE status = 'running';

-- The event retention sweep reads ended runs that still have events.
CREATE INDEX IF NOT EXISTS agent_runs_ended_idx
  ON :SCHEMA.agent_runs (ended_at) WHERE events_kept AND ended_at IS NOT NULL;

-- GET /threads/{id}/runs, newest first.
CREATE INDEX IF NOT EXISTS agent_runs_thread_created_idx
  ON :SCHEMA.agent_runs (thread_id, created_at);

-- The SSE events of a run, in order (seq from 0). data is the event's JSON text as sent.
CREATE TABLE IF NOT EXISTS :SCHEMA.threadline_run_events (
  thread_id TEXT NOT NULL,
  run_id UUID NOT NULL,
  seq INTEGER NOT NULL,
  event TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (thread_id, run_id, seq)
);

-- A run deleted by any path (DELETE of the run, of its thread, the TTL sweep, a rollback) takes
-- its events along. Row-level and by the run's own key, as 0012's triggers, so that on Citus it
-- runs on the co-located shard of the deleted row.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_forget_run_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM :SCHEMA.threadline_run_events e
  WHERE e.thread_id = OLD.thread_id AND e.run_id = OLD.run_id;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER agent_runs_forget_events
  AFTER DELETE ON :SCHEMA.agent_runs
  FOR EACH ROW EXECUTE FUNCTION :SCHEMA.threadline_forget_run_events();

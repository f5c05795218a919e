-- 0007 agent server
-- Threads and runs of the Agent Server API (the routes LangGraph's SDK and useStream call).
-- A thread's state lives in the checkpoint tables; agent_threads holds what the API adds:
-- metadata, status, the JSON form of its latest values (for search and GET /threads/{id}),
-- the interrupts of its latest run, and an optional ttl in minutes. Both tables are keyed by
-- thread_id first, like the checkpoint tables, so a Citus deployment can distribute them the same
-- way.
--
-- A run holds its thread with a lease: status 'busy', busy_run_id and lease_until, renewed while
-- the run goes on. A process that dies mid-run leaves a lease that expires, and the next run
-- takes the thread over instead of finding it busy forever.
CREATE TABLE IF NOT EXISTS :SCHEMA.agent_threads (
  thread_id TEXT PRIMARY KEY,
  metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
  status TEXT NOT NULL DEFAULT 'idle'
    CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
  "values" JSONB,
  interrupts JSONB NOT NULL DEFAULT '{}'::jsonb,
  -- Minutes idle after which the TTL sweep deletes the thread; NULL follows cleanup.ttl.
  ttl_minutes DOUBLE PRECISION CHECK (ttl_minutes IS NULL OR ttl_minutes > 0),
  -- now() + ttl at the latest touch (create, patch, run end, state update): what the sweep reads.
  expires_at TIMESTAMPTZ,
  busy_run_id UUID,
  lease_until TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The per-thread TTL sweep reads expired threads oldest first without scanning the table.
CREATE INDEX IF NOT EXISTS agent_threads_expires_at_idx
  ON :SCHEMA.agent_threads (expires_at) WHERE expires_at IS NOT NULL;

-- POST /threads/search with a metadata filter (`metadata @> $1`).
CREATE INDEX IF NOT EXISTS agent_threads_metadata_idx
  ON :SCHEMA.agent_threads USING gin (metadata jsonb_path_ops);

CREATE TABLE IF NOT EXISTS :SCHEMA.agent_runs (
  thread_id TEXT NOT NULL,
  run_id UUID NOT NULL,
  assistant_id UUID NOT NULL,
  status TEXT NOT NULL
    CHECK (status IN ('pending', 'running', 'success', 'error', 'timeout', 'interrupted')),
  metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
  kwargs JSONB NOT NULL DEFAULT '{}'::jsonb,
  multitask_strategy TEXT NOT NULL DEFAULT 'reject',
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (thread_id, run_id)
);

-- Deletes a thread whole, in the caller's transaction: its runs, its Agent Server row, its owner,
-- and every checkpoint, blob and write. Returns true when anything existed.
CREATE OR REPLACE FUNCTION :SCHEMA.agent_delete_thread(tid TEXT) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  found_thread boolean;
  found_checkpoints boolean;
BEGIN
  DELETE FROM :SCHEMA.agent_runs r WHERE r.thread_id = tid;
  DELETE FROM :SCHEMA.agent_threads t WHERE t.thread_id = tid;
  found_thread := FOUND;
  DELETE FROM :SCHEMA.checkpoint_writes w WHERE w.thread_id = tid;
  DELETE FROM :SCHEMA.checkpoint_blobs b WHERE b.thread_id = tid;
  DELETE FROM :SCHEMA.checkpoints c WHERE c.thread_id = tid;
  found_checkpoints := FOUND;
  DELETE FROM :SCHEMA.checkpoint_threads ct WHERE ct.thread_id = tid;
  DELETE FROM :SCHEMA.thread_owners o WHERE o.thread_id = tid;
  RETURN found_thread OR found_checkpoints;
END $$;

-- Threads removed by the TTL sweep (checkpoint_threads rows) take their Agent Server rows along,
-- one statement per sweep batch, as 0006 does for owners.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_forget_agent_threads() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM :SCHEMA.agent_runs r USING gone_rows g WHERE r.thread_id = g.thread_id;
  DELETE FROM :SCHEMA.agent_threads t USING gone_rows g WHERE t.thread_id = g.thread_id;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER checkpoint_threads_forget_agent_threads
  AFTER DELETE ON :SCHEMA.checkpoint_threads
  REFERENCING OLD TABLE AS gone_rows
  FOR EACH STATEMENT EXECUTE FUNCTION :SCHEMA.threadline_forget_agent_threads();

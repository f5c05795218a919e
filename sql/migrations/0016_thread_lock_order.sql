-- 0016 thread lock order
-- Deleting a thread now takes its Agent Server row before its runs, the order every run-queue
-- statement follows (src/runs/queue.ts, LOCK_ORDER; decision H34). 0010's agent_delete_thread
-- and 0012's trigger deleted the runs first: a delete racing a run's create on the same thread
-- (thread row, then runs) could deadlock (40P01). The DELETE of the thread row is its lock; the
-- bodies are otherwise unchanged, as is the row-level form Citus needs (0012).

CREATE OR REPLACE FUNCTION :SCHEMA.agent_delete_thread(tid TEXT) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  found_thread boolean;
  found_checkpoints boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(1953265522, hashtext(tid));
  DELETE FROM :SCHEMA.agent_threads t WHERE t.thread_id = tid;
  found_thread := FOUND;
  DELETE FROM :SCHEMA.agent_runs r WHERE r.thread_id = tid;
  DELETE FROM :SCHEMA.checkpoint_writes w WHERE w.thread_id = tid;
  DELETE FROM :SCHEMA.checkpoint_blobs b WHERE b.thread_id = tid;
  DELETE FROM :SCHEMA.checkpoints c WHERE c.thread_id = tid;
  found_checkpoints := FOUND;
  DELETE FROM :SCHEMA.checkpoint_threads ct WHERE ct.thread_id = tid;
  DELETE FROM :SCHEMA.thread_owners o WHERE o.thread_id = tid;
  RETURN found_thread OR found_checkpoints;
END $$;

CREATE OR REPLACE FUNCTION :SCHEMA.threadline_forget_thread() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM :SCHEMA.thread_owners o WHERE o.thread_id = OLD.thread_id;
  DELETE FROM :SCHEMA.agent_threads t WHERE t.thread_id = OLD.thread_id;
  DELETE FROM :SCHEMA.agent_runs r WHERE r.thread_id = OLD.thread_id;
  RETURN NULL;
END $$;

-- 0012 router triggers
-- A thread's owner and Agent Server rows follow its checkpoint_threads row (DELETE
-- /api/chat/:id, deleteThread, the TTL sweep) through a row-level trigger that deletes them by
-- `thread_id = OLD.thread_id`, instead of 0006's and 0007's statement-level triggers that joined
-- a transition table. With the thread-keyed tables distributed by thread_id (Citus), a trigger
-- fires on the shard of the deleted row, and only a statement that names its thread can be
-- routed to the co-located shards; a join with a transition table cannot. The cost moves from
-- one DELETE per sweep batch to three primary-key deletes per thread (about 30 us each).
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_forget_thread() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM :SCHEMA.thread_owners o WHERE o.thread_id = OLD.thread_id;
  DELETE FROM :SCHEMA.agent_runs r WHERE r.thread_id = OLD.thread_id;
  DELETE FROM :SCHEMA.agent_threads t WHERE t.thread_id = OLD.thread_id;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS checkpoint_threads_forget_owners ON :SCHEMA.checkpoint_threads;
DROP TRIGGER IF EXISTS checkpoint_threads_forget_agent_threads ON :SCHEMA.checkpoint_threads;
DROP FUNCTION IF EXISTS :SCHEMA.threadline_forget_owners();
DROP FUNCTION IF EXISTS :SCHEMA.threadline_forget_agent_threads();

CREATE OR REPLACE TRIGGER checkpoint_threads_forget_thread
  AFTER DELETE ON :SCHEMA.checkpoint_threads
  FOR EACH ROW EXECUTE FUNCTION :SCHEMA.threadline_forget_thread();

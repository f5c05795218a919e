-- 0006 thread owners
-- The HTTP service's per-key isolation: with API keys configured, a chat thread belongs to the
-- key that created it and every other key gets 404 for it. Only the sha256 of the key is stored
-- (hex), never the key. The owner row goes away with its thread: DELETE /api/chat/:id removes it,
-- and the trigger below follows the TTL cleanup (which deletes checkpoint_threads rows), so an
-- expired id can be claimed again instead of staying reserved forever.
CREATE TABLE IF NOT EXISTS :SCHEMA.thread_owners (
  thread_id TEXT PRIMARY KEY,
  key_hash TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION :SCHEMA.threadline_forget_owners() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM :SCHEMA.thread_owners o USING gone_rows g WHERE o.thread_id = g.thread_id;
  RETURN NULL;
END $$;

-- Statement-level with a transition table: one DELETE per cleanup batch, not one per thread.
CREATE OR REPLACE TRIGGER checkpoint_threads_forget_owners
  AFTER DELETE ON :SCHEMA.checkpoint_threads
  REFERENCING OLD TABLE AS gone_rows
  FOR EACH STATEMENT EXECUTE FUNCTION :SCHEMA.threadline_forget_owners();

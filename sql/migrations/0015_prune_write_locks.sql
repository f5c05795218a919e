-- 0015 prune write locks
-- The history cap (prune_thread_history) now takes each thread's write lock, as the TTL sweep
-- (0010) and every delete do, on plain PostgreSQL and on a distributed (Citus) schema alike.
--
-- Why: a put is gated by threadline_lock_for_put (0010), which checks under the thread's lock
-- that every delta base it extends is still stored. Pruning took no lock, so a put forking from
-- an old checkpoint could pass that check while a prune whose snapshot predated the put was
-- deleting the same base blob (unreachable from the kept checkpoints it saw): the put then
-- committed a delta whose base was gone, and the thread no longer read back.
--
-- Now each batch first tries the lock of each of its threads (pg_try_advisory_xact_lock, never
-- waiting, as the sweep does) and prunes only those it got, in a later statement (a fresh
-- snapshot under READ COMMITTED):
--   - a put in flight holds the lock: its thread is skipped by this pass (the next pass trims it);
--   - a put that committed before the lock is seen: its checkpoint is the newest and is kept with
--     every blob it reaches;
--   - a put that starts after the lock waits for the prune's commit, then re-checks its bases in
--     a fresh snapshot and, finding one gone, the saver stores the checkpoint whole.
-- The lock is held until the batch commits; a batch holds up to batch_size advisory locks in the
-- shared lock table, like a sweep batch. On Citus the function runs on the coordinator, where
-- put's gate takes the same lock (0014). Signature and results are those of 0004: the cursor
-- walks every thread of the batch whether or not it was locked.

CREATE OR REPLACE FUNCTION :SCHEMA.prune_thread_history(
  keep_latest integer,
  batch_size integer DEFAULT 1000,
  after_thread text DEFAULT NULL
) RETURNS TABLE (last_thread text, threads_pruned integer, checkpoints_deleted bigint)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
AS $$
DECLARE
  ids text[];
  locked text[];
  tid text;
  n integer;
  m bigint;
BEGIN
  IF keep_latest IS NULL OR keep_latest < 1 THEN
    RAISE EXCEPTION 'prune_thread_history: keep_latest must be at least 1, got %',
      coalesce(keep_latest::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'to delete whole threads use cleanup_expired_threads';
  END IF;
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'prune_thread_history: batch_size must be at least 1, got %',
      coalesce(batch_size::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  IF after_thread IS NULL THEN
    SELECT array_agg(s.thread_id ORDER BY s.thread_id) INTO ids
    FROM (
      SELECT t.thread_id FROM :SCHEMA.checkpoint_threads t
      ORDER BY t.thread_id LIMIT batch_size
    ) s;
  ELSE
    SELECT array_agg(s.thread_id ORDER BY s.thread_id) INTO ids
    FROM (
      SELECT t.thread_id FROM :SCHEMA.checkpoint_threads t
      WHERE t.thread_id > after_thread
      ORDER BY t.thread_id LIMIT batch_size
    ) s;
  END IF;

  last_thread := CASE WHEN coalesce(cardinality(ids), 0) < batch_size THEN NULL
                      ELSE ids[cardinality(ids)] END;
  threads_pruned := 0;
  checkpoints_deleted := 0;
  IF ids IS NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;

  -- The write locks first, in a statement of their own: the pruning statement below takes its
  -- snapshot after they were granted.
  SELECT array_agg(u.v ORDER BY u.v) INTO locked
  FROM unnest(ids) AS u(v)
  WHERE pg_try_advisory_xact_lock(1953265522, hashtext(u.v));
  IF locked IS NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;

  IF NOT :SCHEMA.threadline_distributed() THEN
    SELECT p.threads_pruned, p.checkpoints_deleted INTO threads_pruned, checkpoints_deleted
    FROM :SCHEMA.threadline_prune_threads(locked, keep_latest) p;
  ELSE
    FOREACH tid IN ARRAY locked LOOP
      SELECT p.threads_pruned, p.checkpoints_deleted INTO n, m
      FROM :SCHEMA.threadline_prune_threads(ARRAY[tid], keep_latest) p;
      threads_pruned := threads_pruned + n;
      checkpoints_deleted := checkpoints_deleted + m;
    END LOOP;
  END IF;
  RETURN NEXT;
END $$;

COMMENT ON FUNCTION :SCHEMA.prune_thread_history(integer, integer, text) IS
  'Keeps the keep_latest newest checkpoints per (thread, namespace) of batch_size threads after after_thread, with their writes and reachable blobs, skipping threads whose write lock is held; returns the cursor for the next call (NULL when done).';

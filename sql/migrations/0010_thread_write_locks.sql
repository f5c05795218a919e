-- 0010 thread write locks
-- A per-thread lock that orders a checkpoint write against a delete of the same thread, so that
-- a delete or TTL sweep from another process during a turn cannot leave a delta row whose base
-- is gone (issue 11):
--   threadline_lock_for_put(tid, ns, channels, bases, base_xmins) -> boolean   taken by every put
--   threadline_delete_thread(tid) -> boolean                                    deleteThread
--   agent_delete_thread(tid), cleanup_expired_threads_detailed(ttl, batch)      now take it too
--
-- The lock is pg_advisory_xact_lock(1953265522 /* 'tlwr' */, hashtext(thread_id)): transaction
-- scoped, so it works through PgBouncer in transaction mode and never outlives its statement.
-- A hash collision between two threads only makes them wait for each other.
--
-- Why a lock and a re-check, both: a put is one statement whose snapshot is taken when it
-- starts. A delete that commits after that snapshot is invisible to it, and a delete whose
-- snapshot predates the put's commit does not see the put's rows. With the lock, a delete waits
-- for a put in flight and then deletes with a fresh snapshot (every row of the put goes too), and
-- a put that waited for a delete checks its delta bases in a statement of its own (a fresh
-- snapshot, after the delete's commit) and, finding one gone, stores nothing; the saver then
-- writes the checkpoint again with every value whole, so it lands in a fresh thread.
--
-- These functions must run in READ COMMITTED (the default): the fresh snapshots come from it.

-- Takes the thread's write lock, then says whether every delta base of a put (bases[i] not NULL:
-- the row (channels[i], bases[i]) of this thread and namespace whose xmin is base_xmins[i]) is
-- still stored. A base row deleted and written again has another xmin and does not count.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_lock_for_put(
  tid text,
  ns text,
  channels text[],
  bases text[],
  base_xmins text[]
) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  wanted integer;
  present integer;
BEGIN
  PERFORM pg_advisory_xact_lock(1953265522, hashtext(tid));
  wanted := coalesce(cardinality(array_remove(bases, NULL)), 0);
  IF wanted = 0 THEN
    RETURN true;
  END IF;
  -- Its own statement, so its snapshot is taken after the lock was granted. LATERAL + LIMIT:
  -- one primary-key probe per base, never a scan of the thread's blobs.
  SELECT count(*) INTO present
  FROM unnest(channels, bases, base_xmins) AS d(channel, base, xid)
  CROSS JOIN LATERAL (
    SELECT 1 FROM :SCHEMA.checkpoint_blobs x
    WHERE x.thread_id = tid AND x.checkpoint_ns = ns
      AND x.channel = d.channel AND x.version = d.base AND x.xmin::text = d.xid
    LIMIT 1
  ) hit
  WHERE d.base IS NOT NULL;
  RETURN present = wanted;
END $$;

COMMENT ON FUNCTION :SCHEMA.threadline_lock_for_put(text, text, text[], text[], text[]) IS
  'Takes the thread''s write lock (until commit) and returns whether every delta base of a put is still stored.';

-- Deletes a thread (checkpoints, blobs, writes, activity row) under its write lock; true when it
-- had checkpoints. Each DELETE takes its own snapshot after the lock: the rows of a put that was
-- in flight are deleted with the rest.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_delete_thread(tid text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  found_checkpoints boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(1953265522, hashtext(tid));
  DELETE FROM :SCHEMA.checkpoint_writes w WHERE w.thread_id = tid;
  DELETE FROM :SCHEMA.checkpoint_blobs b WHERE b.thread_id = tid;
  DELETE FROM :SCHEMA.checkpoints c WHERE c.thread_id = tid;
  found_checkpoints := FOUND;
  DELETE FROM :SCHEMA.checkpoint_threads t WHERE t.thread_id = tid;
  RETURN found_checkpoints;
END $$;

COMMENT ON FUNCTION :SCHEMA.threadline_delete_thread(text) IS
  'Deletes every checkpoint, blob and write of a thread under its write lock; returns whether it had checkpoints.';

-- 0007's Agent Server delete, now under the same lock (same body otherwise).
CREATE OR REPLACE FUNCTION :SCHEMA.agent_delete_thread(tid TEXT) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  found_thread boolean;
  found_checkpoints boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(1953265522, hashtext(tid));
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

-- 0009's sweep batch (idle threads, then Agent Server threads past their own ttl), now also
-- taking each victim's write lock. It only tries (never waits): a thread whose lock is held has
-- a write or a delete in flight and is skipped like a row locked elsewhere, and a put that holds
-- the lock while its activity trigger waits for the victim's row cannot deadlock with the sweep.
-- The deletes run after the locks, each with a fresh snapshot, so they also take the rows of a
-- put that committed meanwhile. A batch holds up to batch_size advisory locks in the shared lock
-- table (max_locks_per_transaction x max_connections slots).
CREATE OR REPLACE FUNCTION :SCHEMA.cleanup_expired_threads_detailed(
  ttl interval DEFAULT interval '7 days',
  batch_size integer DEFAULT 1000
) RETURNS TABLE (threads_deleted integer, checkpoints_deleted bigint)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
AS $$
DECLARE
  idle text[];
  own text[];
  victims text[];
BEGIN
  IF ttl IS NULL OR ttl <= interval '0' THEN
    RAISE EXCEPTION 'cleanup_expired_threads: ttl must be a positive interval, got %',
      coalesce(ttl::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value', HINT = 'pass e.g. interval ''7 days''';
  END IF;
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'cleanup_expired_threads: batch_size must be at least 1, got %',
      coalesce(batch_size::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value', HINT = 'pass e.g. 1000';
  END IF;

  SELECT array_agg(v.thread_id) INTO idle
  FROM (
    SELECT t.thread_id
    FROM :SCHEMA.checkpoint_threads t
    WHERE t.last_activity < now() - ttl
      AND NOT EXISTS (
        SELECT 1 FROM :SCHEMA.agent_threads a
        WHERE a.thread_id = t.thread_id AND a.ttl_minutes IS NOT NULL)
    ORDER BY t.last_activity
    LIMIT batch_size
    FOR UPDATE OF t SKIP LOCKED
  ) v;

  SELECT array_agg(v.thread_id) INTO own
  FROM (
    SELECT a.thread_id
    FROM :SCHEMA.agent_threads a
    WHERE a.expires_at < now()
      AND (a.status <> 'busy' OR a.lease_until IS NULL OR a.lease_until < now())
    ORDER BY a.expires_at
    LIMIT batch_size - coalesce(cardinality(idle), 0)
    FOR UPDATE SKIP LOCKED
  ) v;

  SELECT array_agg(v) INTO idle
  FROM unnest(idle) AS v
  WHERE pg_try_advisory_xact_lock(1953265522, hashtext(v));
  SELECT array_agg(v) INTO own
  FROM unnest(own) AS v
  WHERE pg_try_advisory_xact_lock(1953265522, hashtext(v));

  victims := coalesce(idle, '{}'::text[]) || coalesce(own, '{}'::text[]);
  threads_deleted := cardinality(victims);
  checkpoints_deleted := 0;
  IF threads_deleted = 0 THEN
    RETURN NEXT;
    RETURN;
  END IF;

  DELETE FROM :SCHEMA.checkpoint_writes w WHERE w.thread_id = ANY (victims);
  DELETE FROM :SCHEMA.checkpoint_blobs b WHERE b.thread_id = ANY (victims);
  DELETE FROM :SCHEMA.checkpoints c WHERE c.thread_id = ANY (victims);
  GET DIAGNOSTICS checkpoints_deleted = ROW_COUNT;
  -- The triggers of 0006 and 0007 take owners and Agent Server rows along.
  DELETE FROM :SCHEMA.checkpoint_threads t WHERE t.thread_id = ANY (victims);
  IF own IS NOT NULL THEN
    DELETE FROM :SCHEMA.agent_runs r WHERE r.thread_id = ANY (own);
    DELETE FROM :SCHEMA.agent_threads a WHERE a.thread_id = ANY (own);
    DELETE FROM :SCHEMA.thread_owners o WHERE o.thread_id = ANY (own);
  END IF;
  RETURN NEXT;
END $$;

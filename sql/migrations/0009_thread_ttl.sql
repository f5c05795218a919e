-- 0009 thread ttl
-- Agent Server threads created (or patched) with their own `ttl` follow it instead of the
-- service's cleanup.ttl: agent_threads.expires_at (now() + ttl at the thread's latest API touch,
-- migration 0007) is what the sweep reads for them. The other threads keep the rules of 0004.
--
-- cleanup_expired_threads_detailed keeps its signature and its contract (repeat until it returns
-- fewer than batch_size threads): one call takes up to batch_size threads in all,
--   1. threads idle longer than ttl (checkpoint_threads), except those with a ttl of their own,
--      locked as in 0004;
--   2. then, up to the rest of the batch, Agent Server threads past their expires_at, locked on
--      their agent_threads row with FOR UPDATE SKIP LOCKED. A thread a live run holds (busy with a
--      lease in the future) is skipped: the run's end moves expires_at on. The re-check under
--      READ COMMITTED drops a thread whose expires_at moved after the candidate list was read.
-- A thread with its own ttl and no checkpoint yet (created, never run) has no checkpoint_threads
-- row, so its agent_threads, agent_runs and owner rows are deleted explicitly.

CREATE OR REPLACE FUNCTION :SCHEMA.cleanup_expired_threads_detailed(
  ttl interval DEFAULT interval '7 days',
  batch_size integer DEFAULT 1000
) RETURNS TABLE (threads_deleted integer, checkpoints_deleted bigint)
LANGUAGE plpgsql VOLATILE
-- As in 0004: batches are small by design, index access is always the right plan.
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

COMMENT ON FUNCTION :SCHEMA.cleanup_expired_threads_detailed(interval, integer) IS
  'Deletes up to batch_size threads: idle longer than ttl, or Agent Server threads past their own ttl (checkpoints, blobs, writes, runs); returns threads and checkpoints deleted.';

-- Dry run: the same selection as above, counted without locking or deleting.
CREATE OR REPLACE FUNCTION :SCHEMA.cleanup_preview(
  ttl interval DEFAULT interval '7 days',
  keep_latest integer DEFAULT 0
) RETURNS TABLE (threads_expired bigint, checkpoints_expired bigint, history_checkpoints bigint)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
  IF ttl IS NULL OR ttl <= interval '0' THEN
    RAISE EXCEPTION 'cleanup_preview: ttl must be a positive interval, got %',
      coalesce(ttl::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF keep_latest IS NULL OR keep_latest < 0 THEN
    RAISE EXCEPTION 'cleanup_preview: keep_latest must be 0 (no cap) or more, got %',
      coalesce(keep_latest::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  WITH expired AS (
    SELECT t.thread_id
    FROM :SCHEMA.checkpoint_threads t
    WHERE t.last_activity < now() - ttl
      AND NOT EXISTS (
        SELECT 1 FROM :SCHEMA.agent_threads a
        WHERE a.thread_id = t.thread_id AND a.ttl_minutes IS NOT NULL)
    UNION
    SELECT a.thread_id
    FROM :SCHEMA.agent_threads a
    WHERE a.expires_at < now()
      AND (a.status <> 'busy' OR a.lease_until IS NULL OR a.lease_until < now())
  )
  SELECT count(*),
         coalesce(sum((SELECT count(*) FROM :SCHEMA.checkpoints c
                       WHERE c.thread_id = e.thread_id)), 0)::bigint
    INTO threads_expired, checkpoints_expired
  FROM expired e;

  history_checkpoints := 0;
  IF keep_latest > 0 THEN
    SELECT count(*) INTO history_checkpoints
    FROM (
      SELECT row_number() OVER (
               PARTITION BY c.thread_id, c.checkpoint_ns ORDER BY c.checkpoint_id DESC) AS rn
      FROM :SCHEMA.checkpoints c
      JOIN :SCHEMA.checkpoint_threads t ON t.thread_id = c.thread_id
      WHERE t.last_activity >= now() - ttl
    ) r
    WHERE r.rn > keep_latest;
  END IF;
  RETURN NEXT;
END $$;

-- 0004 cleanup
-- TTL cleanup and history pruning, run in SQL on the database clock so every caller (the
-- service's schedule, `threadline cleanup`, system cron, a Kubernetes CronJob, pg_cron) applies
-- the same rules:
--   cleanup_expired_threads(ttl, batch_size) -> integer        the public contract (INTERFACE.md)
--   cleanup_expired_threads_detailed(ttl, batch_size)          the same, also counting checkpoints
--   cleanup_all_expired_threads(ttl, batch_size, max_runtime)  procedure: batches, one commit each
--   cleanup_preview(ttl, keep_latest)                          what a run would delete (dry run)
--   prune_thread_history(keep_latest, batch_size, after_thread) history cap for live threads
--
-- Concurrency (READ COMMITTED): victims are locked with FOR UPDATE SKIP LOCKED on their
-- checkpoint_threads row, the row every write also locks through the activity trigger of 0003.
-- So a thread whose write is in flight is skipped, a write committed before the lock is taken
-- makes the row fail the re-checked `last_activity < now() - ttl` and the thread is skipped, and a
-- write started after the lock waits for the sweep to commit: its own rows were invisible to the
-- sweep's deletes, so they survive and its trigger recreates the thread row with a fresh
-- activity. Two sweeps never lock the same thread, so each expired thread is deleted once.
--
-- Every statement reaches checkpoints, blobs and writes through their primary keys (thread_id
-- leads each of them) with an explicit thread list, never by scanning a table.

CREATE OR REPLACE FUNCTION :SCHEMA.cleanup_expired_threads_detailed(
  ttl interval DEFAULT interval '7 days',
  batch_size integer DEFAULT 1000
) RETURNS TABLE (threads_deleted integer, checkpoints_deleted bigint)
LANGUAGE plpgsql VOLATILE
-- The thread list is an array whose size the planner cannot see; when most of a table is
-- expired it may estimate a large share of checkpoints and pick a sequential scan, turning one
-- bounded batch into a read of the whole table. Batches are small by design, so index access
-- is always the right plan; this setting only lasts for the call.
SET enable_seqscan = off
AS $$
DECLARE
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

  -- Oldest first through checkpoint_threads_last_activity_idx; LockRows sits under the LIMIT,
  -- so rows skipped (locked elsewhere) or re-checked away (written meanwhile) are replaced.
  SELECT array_agg(v.thread_id) INTO victims
  FROM (
    SELECT t.thread_id
    FROM :SCHEMA.checkpoint_threads t
    WHERE t.last_activity < now() - ttl
    ORDER BY t.last_activity
    LIMIT batch_size
    FOR UPDATE SKIP LOCKED
  ) v;

  threads_deleted := 0;
  checkpoints_deleted := 0;
  IF victims IS NULL THEN
    RETURN NEXT;
    RETURN;
  END IF;

  DELETE FROM :SCHEMA.checkpoint_writes w WHERE w.thread_id = ANY (victims);
  DELETE FROM :SCHEMA.checkpoint_blobs b WHERE b.thread_id = ANY (victims);
  DELETE FROM :SCHEMA.checkpoints c WHERE c.thread_id = ANY (victims);
  GET DIAGNOSTICS checkpoints_deleted = ROW_COUNT;
  DELETE FROM :SCHEMA.checkpoint_threads t WHERE t.thread_id = ANY (victims);
  GET DIAGNOSTICS threads_deleted = ROW_COUNT;
  RETURN NEXT;
END $$;

COMMENT ON FUNCTION :SCHEMA.cleanup_expired_threads_detailed(interval, integer) IS
  'Deletes up to batch_size threads idle longer than ttl (checkpoints, blobs, writes); returns threads and checkpoints deleted.';

-- The contract of INTERFACE.md: callers repeat it until it returns less than batch_size.
CREATE OR REPLACE FUNCTION :SCHEMA.cleanup_expired_threads(
  ttl interval DEFAULT interval '7 days',
  batch_size integer DEFAULT 1000
) RETURNS integer
LANGUAGE sql VOLATILE
AS $$
  SELECT d.threads_deleted FROM :SCHEMA.cleanup_expired_threads_detailed(ttl, batch_size) d
$$;

COMMENT ON FUNCTION :SCHEMA.cleanup_expired_threads(interval, integer) IS
  'Deletes up to batch_size threads idle longer than ttl with all their checkpoints, blobs and writes; returns the number of threads deleted. Repeat until it returns less than batch_size.';

-- For pg_cron and psql jobs: one call drains the backlog, committing after every batch so locks
-- and row versions stay small, and stops after max_runtime (NULL: no limit). CALL it outside an
-- explicit transaction block, as pg_cron does.
CREATE OR REPLACE PROCEDURE :SCHEMA.cleanup_all_expired_threads(
  ttl interval DEFAULT interval '7 days',
  batch_size integer DEFAULT 1000,
  max_runtime interval DEFAULT interval '5 minutes'
)
LANGUAGE plpgsql
AS $$
DECLARE
  started timestamptz := clock_timestamp();
  deleted integer;
BEGIN
  LOOP
    deleted := :SCHEMA.cleanup_expired_threads(ttl, batch_size);
    COMMIT;
    EXIT WHEN deleted < batch_size
      OR (max_runtime IS NOT NULL AND clock_timestamp() - started >= max_runtime);
  END LOOP;
END $$;

-- Dry run: counts what a complete run would delete, without locking or deleting anything.
-- checkpoints_expired is summed per thread through the primary key; history_checkpoints reads
-- the keys of every live checkpoint (an index-only scan at best), acceptable for an ops command.
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

  SELECT count(*), coalesce(sum(s.n), 0)::bigint INTO threads_expired, checkpoints_expired
  FROM (
    SELECT (SELECT count(*) FROM :SCHEMA.checkpoints c WHERE c.thread_id = t.thread_id) AS n
    FROM :SCHEMA.checkpoint_threads t
    WHERE t.last_activity < now() - ttl
  ) s;

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

-- History cap for live threads: of each (thread, namespace), the keep_latest newest checkpoints
-- (checkpoint ids are time-ordered UUIDv6, as the savers' own "latest" query assumes) stay with
-- their pending writes and every blob they reference, following delta_base links down to the
-- full value. Older checkpoints, their writes, and blobs no kept checkpoint reaches go.
--
-- Walks checkpoint_threads in thread_id order, batch_size threads per call: pass the returned
-- last_thread as after_thread to continue; NULL means the walk is complete.
--
-- It takes no lock on thread rows, so writers of live threads never wait for it. Everything is
-- one statement, one snapshot: a checkpoint committed meanwhile is invisible and untouched, and
-- the blobs it shares with its parent (the newest kept checkpoint) are reachable and kept.
CREATE OR REPLACE FUNCTION :SCHEMA.prune_thread_history(
  keep_latest integer,
  batch_size integer DEFAULT 1000,
  after_thread text DEFAULT NULL
) RETURNS TABLE (last_thread text, threads_pruned integer, checkpoints_deleted bigint)
LANGUAGE plpgsql VOLATILE
-- See cleanup_expired_threads_detailed: batches go through primary keys, never a table scan.
SET enable_seqscan = off
AS $$
DECLARE
  ids text[];
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

  -- Two branches rather than `after_thread IS NULL OR ...`, which would hide the key range.
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

  WITH RECURSIVE ranked AS (
    SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id,
           row_number() OVER (
             PARTITION BY c.thread_id, c.checkpoint_ns ORDER BY c.checkpoint_id DESC) AS rn
    FROM :SCHEMA.checkpoints c
    WHERE c.thread_id = ANY (ids)
  ),
  doomed AS (
    SELECT r.thread_id, r.checkpoint_ns, r.checkpoint_id FROM ranked r WHERE r.rn > keep_latest
  ),
  pairs AS (
    SELECT DISTINCT d.thread_id, d.checkpoint_ns FROM doomed d
  ),
  -- Blob keys the kept checkpoints of the pruned (thread, namespace) pairs can read.
  reachable (thread_id, checkpoint_ns, channel, version) AS (
    SELECT c.thread_id, c.checkpoint_ns, v.key, v.value
    FROM ranked r
    JOIN pairs p ON p.thread_id = r.thread_id AND p.checkpoint_ns = r.checkpoint_ns
    JOIN :SCHEMA.checkpoints c
      ON c.thread_id = r.thread_id AND c.checkpoint_ns = r.checkpoint_ns
     AND c.checkpoint_id = r.checkpoint_id
    CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') v
    WHERE r.rn <= keep_latest
    UNION
    SELECT b.thread_id, b.checkpoint_ns, b.channel, b.delta_base
    FROM reachable x
    JOIN :SCHEMA.checkpoint_blobs b
      ON b.thread_id = x.thread_id AND b.checkpoint_ns = x.checkpoint_ns
     AND b.channel = x.channel AND b.version = x.version
    WHERE b.delta_base IS NOT NULL
  ),
  gone AS (
    DELETE FROM :SCHEMA.checkpoints c
    USING doomed d
    WHERE c.thread_id = d.thread_id AND c.checkpoint_ns = d.checkpoint_ns
      AND c.checkpoint_id = d.checkpoint_id
    RETURNING c.thread_id
  ),
  gone_writes AS (
    DELETE FROM :SCHEMA.checkpoint_writes w
    USING doomed d
    WHERE w.thread_id = d.thread_id AND w.checkpoint_ns = d.checkpoint_ns
      AND w.checkpoint_id = d.checkpoint_id
  ),
  gone_blobs AS (
    DELETE FROM :SCHEMA.checkpoint_blobs b
    USING pairs p
    WHERE b.thread_id = p.thread_id AND b.checkpoint_ns = p.checkpoint_ns
      AND NOT EXISTS (
        SELECT 1 FROM reachable x
        WHERE x.thread_id = b.thread_id AND x.checkpoint_ns = b.checkpoint_ns
          AND x.channel = b.channel AND x.version = b.version)
  )
  SELECT count(DISTINCT g.thread_id)::integer, count(*) INTO threads_pruned, checkpoints_deleted
  FROM gone g;

  RETURN NEXT;
END $$;

COMMENT ON FUNCTION :SCHEMA.prune_thread_history(integer, integer, text) IS
  'Keeps the keep_latest newest checkpoints per (thread, namespace) of batch_size threads after after_thread, with their writes and reachable blobs; returns the cursor for the next call (NULL when done).';

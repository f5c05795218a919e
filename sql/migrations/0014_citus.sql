-- 0014 citus
-- Makes the functions and triggers work when the thread-keyed tables are distributed by
-- thread_id with Citus (threadline_distribute below; README "Running on Citus"), with the same
-- results on plain PostgreSQL, where every function takes exactly the path it took before.
--   threadline_touch_thread: the ON CONFLICT ... WHERE compares with a value computed before the
--     statement (Citus only accepts IMMUTABLE expressions there; timestamptz + interval is not).
--   threadline_distributed(): whether this schema's tables are distributed (Citus present and
--     checkpoint_threads in its metadata); only a distributed schema takes the paths below.
--   cleanup_expired_threads_detailed: on a distributed schema the candidates are read without a
--     lock (a multi-shard SELECT cannot lock rows) and each one is then locked by its own
--     single-shard `thread_id = v ... FOR UPDATE SKIP LOCKED`, re-checking the expiry; the
--     per-thread write locks and the deletes are those of 0010. The function runs on the
--     coordinator, where put (its gate) and deleteThread take the same per-thread lock.
--   prune_thread_history: its statement moves to threadline_prune_threads(ids, keep_latest),
--     with every table reference filtered by `thread_id = ANY (ids)`; a distributed schema calls
--     it once per thread (a recursive CTE on distributed tables must name its shard).
--   threadline_distribute(): distributes an installed schema, idempotent.

CREATE OR REPLACE FUNCTION :SCHEMA.threadline_touch_thread() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := :SCHEMA.threadline_activity_at();
  -- Activity within the last second counts as current (see 0003).
  fresh timestamptz := at - interval '1 second';
BEGIN
  -- A plain read first: for an active thread nothing is written at all (see 0003).
  IF NOT EXISTS (
    SELECT 1 FROM :SCHEMA.checkpoint_threads c
    WHERE c.thread_id = NEW.thread_id AND c.last_activity >= fresh
  ) THEN
    INSERT INTO :SCHEMA.checkpoint_threads AS t (thread_id, created_at, last_activity)
    VALUES (NEW.thread_id, at, at)
    ON CONFLICT (thread_id) DO UPDATE
      SET last_activity = EXCLUDED.last_activity
      -- Never move activity backwards (imports of old data).
      WHERE t.last_activity < fresh;
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION :SCHEMA.threadline_distributed() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  found_it boolean;
BEGIN
  IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
    INTO found_it USING to_regclass(':SCHEMA.checkpoint_threads');
  RETURN found_it;
END $$;

COMMENT ON FUNCTION :SCHEMA.threadline_distributed() IS
  'Whether the schema''s thread-keyed tables are distributed with Citus (threadline_distribute).';

-- Distributes the thread-keyed tables of an installed schema by thread_id, co-located with
-- checkpoints, so that a thread's rows of every table live on one shard group. Idempotent: a
-- table already distributed is left as it is. The ledgers and threadline_run_locks stay local
-- tables of the coordinator (no thread, never joined with the others). Triggers on distributed
-- tables need citus.enable_unsafe_triggers, set here for the call; set it for the database too
-- (README) so later migrations can replace them. Without Citus: SQLSTATE 0A000.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name text, distributed_now boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t text;
  already boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'threadline_distribute: the citus extension is not installed in database %',
      current_database()
      USING ERRCODE = 'feature_not_supported',
            HINT = 'run CREATE EXTENSION citus on a Citus coordinator (or Azure Cosmos DB for PostgreSQL) first';
  END IF;
  PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
  FOREACH t IN ARRAY ARRAY['checkpoints', 'checkpoint_blobs', 'checkpoint_writes',
                           'checkpoint_threads', 'thread_owners', 'threadline_import_journal',
                           'agent_threads', 'agent_runs', 'threadline_run_events'] LOOP
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
      INTO already USING to_regclass(format('%s.%I', ':SCHEMA', t));
    table_name := t;
    distributed_now := NOT already;
    IF NOT already THEN
      IF t = 'checkpoints' THEN
        EXECUTE 'SELECT create_distributed_table($1, ''thread_id'', shard_count => $2)'
          USING format('%s.%I', ':SCHEMA', t), shard_count;
      ELSE
        EXECUTE 'SELECT create_distributed_table($1, ''thread_id'', colocate_with => $2)'
          USING format('%s.%I', ':SCHEMA', t), ':SCHEMA.checkpoints';
      END IF;
    END IF;
    RETURN NEXT;
  END LOOP;
END $$;

COMMENT ON FUNCTION :SCHEMA.threadline_distribute(integer) IS
  'Distributes every thread-keyed table by thread_id, co-located with checkpoints (Citus); idempotent; returns each table and whether this call distributed it.';

-- 0010's sweep batch; on a distributed schema the candidates are locked one by one (above).
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
  candidates text[];
  v text;
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

  IF NOT :SCHEMA.threadline_distributed() THEN
    SELECT array_agg(c.thread_id) INTO idle
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
    ) c;

    SELECT array_agg(c.thread_id) INTO own
    FROM (
      SELECT a.thread_id
      FROM :SCHEMA.agent_threads a
      WHERE a.expires_at < now()
        AND (a.status <> 'busy' OR a.lease_until IS NULL OR a.lease_until < now())
      ORDER BY a.expires_at
      LIMIT batch_size - coalesce(cardinality(idle), 0)
      FOR UPDATE SKIP LOCKED
    ) c;
  ELSE
    -- Twice the batch as candidates, so that threads locked elsewhere are replaced, as LockRows
    -- under the LIMIT replaces them on the plain path.
    SELECT array_agg(c.thread_id ORDER BY c.last_activity) INTO candidates
    FROM (
      SELECT t.thread_id, t.last_activity
      FROM :SCHEMA.checkpoint_threads t
      WHERE t.last_activity < now() - ttl
        AND NOT EXISTS (
          SELECT 1 FROM :SCHEMA.agent_threads a
          WHERE a.thread_id = t.thread_id AND a.ttl_minutes IS NOT NULL)
      ORDER BY t.last_activity
      LIMIT 2 * batch_size
    ) c;
    idle := '{}';
    FOREACH v IN ARRAY coalesce(candidates, '{}') LOOP
      EXIT WHEN cardinality(idle) >= batch_size;
      PERFORM 1 FROM :SCHEMA.checkpoint_threads t
      WHERE t.thread_id = v AND t.last_activity < now() - ttl
      FOR UPDATE SKIP LOCKED;
      IF FOUND THEN
        idle := idle || v;
      END IF;
    END LOOP;

    SELECT array_agg(c.thread_id ORDER BY c.expires_at) INTO candidates
    FROM (
      SELECT a.thread_id, a.expires_at
      FROM :SCHEMA.agent_threads a
      WHERE a.expires_at < now()
        AND (a.status <> 'busy' OR a.lease_until IS NULL OR a.lease_until < now())
      ORDER BY a.expires_at
      LIMIT 2 * (batch_size - cardinality(idle))
    ) c;
    own := '{}';
    FOREACH v IN ARRAY coalesce(candidates, '{}') LOOP
      EXIT WHEN cardinality(idle) + cardinality(own) >= batch_size;
      PERFORM 1 FROM :SCHEMA.agent_threads a
      WHERE a.thread_id = v AND a.expires_at < now()
        AND (a.status <> 'busy' OR a.lease_until IS NULL OR a.lease_until < now())
      FOR UPDATE SKIP LOCKED;
      IF FOUND AND NOT v = ANY (idle) THEN
        own := own || v;
      END IF;
    END LOOP;
    idle := nullif(idle, '{}');
    own := nullif(own, '{}');
  END IF;

  SELECT array_agg(u.v) INTO idle
  FROM unnest(idle) AS u(v)
  WHERE pg_try_advisory_xact_lock(1953265522, hashtext(u.v));
  SELECT array_agg(u.v) INTO own
  FROM unnest(own) AS u(v)
  WHERE pg_try_advisory_xact_lock(1953265522, hashtext(u.v));

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
  -- The trigger of 0012 takes owners and Agent Server rows along.
  DELETE FROM :SCHEMA.checkpoint_threads t WHERE t.thread_id = ANY (victims);
  IF own IS NOT NULL THEN
    DELETE FROM :SCHEMA.agent_runs r WHERE r.thread_id = ANY (own);
    DELETE FROM :SCHEMA.agent_threads a WHERE a.thread_id = ANY (own);
    DELETE FROM :SCHEMA.thread_owners o WHERE o.thread_id = ANY (own);
  END IF;
  RETURN NEXT;
END $$;

-- 0004's pruning statement for a list of threads, every table reference filtered by the list.
-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_prune_threads(ids text[], keep_latest integer)
RETURNS TABLE (threads_pruned integer, checkpoints_deleted bigint)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  RETURN QUERY
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
  reachable (thread_id, checkpoint_ns, channel, version) AS (
    SELECT c.thread_id, c.checkpoint_ns, v.key, v.value
    FROM ranked r
    JOIN pairs p ON p.thread_id = r.thread_id AND p.checkpoint_ns = r.checkpoint_ns
    JOIN :SCHEMA.checkpoints c
      ON c.thread_id = r.thread_id AND c.checkpoint_ns = r.checkpoint_ns
     AND c.checkpoint_id = r.checkpoint_id
    CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') v
    WHERE r.rn <= keep_latest AND c.thread_id = ANY (ids)
    UNION
    SELECT b.thread_id, b.checkpoint_ns, b.channel, b.delta_base
    FROM reachable x
    JOIN :SCHEMA.checkpoint_blobs b
      ON b.thread_id = x.thread_id AND b.checkpoint_ns = x.checkpoint_ns
     AND b.channel = x.channel AND b.version = x.version
    WHERE b.delta_base IS NOT NULL AND b.thread_id = ANY (ids)
  ),
  gone AS (
    DELETE FROM :SCHEMA.checkpoints c
    USING doomed d
    WHERE c.thread_id = ANY (ids) AND c.thread_id = d.thread_id
      AND c.checkpoint_ns = d.checkpoint_ns AND c.checkpoint_id = d.checkpoint_id
    RETURNING c.thread_id
  ),
  gone_writes AS (
    DELETE FROM :SCHEMA.checkpoint_writes w
    USING doomed d
    WHERE w.thread_id = ANY (ids) AND w.thread_id = d.thread_id
      AND w.checkpoint_ns = d.checkpoint_ns AND w.checkpoint_id = d.checkpoint_id
  ),
  gone_blobs AS (
    DELETE FROM :SCHEMA.checkpoint_blobs b
    USING pairs p
    WHERE b.thread_id = ANY (ids) AND b.thread_id = p.thread_id
      AND b.checkpoint_ns = p.checkpoint_ns
      AND NOT EXISTS (
        SELECT 1 FROM reachable x
        WHERE x.thread_id = b.thread_id AND x.checkpoint_ns = b.checkpoint_ns
          AND x.channel = b.channel AND x.version = b.version)
  )
  SELECT count(DISTINCT g.thread_id)::integer, count(*) FROM gone g;
END $$;

-- 0004's history cap, its statement now in threadline_prune_threads (same results).
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

  IF NOT :SCHEMA.threadline_distributed() THEN
    SELECT p.threads_pruned, p.checkpoints_deleted INTO threads_pruned, checkpoints_deleted
    FROM :SCHEMA.threadline_prune_threads(ids, keep_latest) p;
  ELSE
    FOREACH tid IN ARRAY ids LOOP
      SELECT p.threads_pruned, p.checkpoints_deleted INTO n, m
      FROM :SCHEMA.threadline_prune_threads(ARRAY[tid], keep_latest) p;
      threads_pruned := threads_pruned + n;
      checkpoints_deleted := checkpoints_deleted + m;
    END LOOP;
  END IF;
  RETURN NEXT;
END $$;

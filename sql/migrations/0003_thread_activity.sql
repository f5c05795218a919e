-- 0003 thread activity
-- One row per thread with the database time of its latest write, kept by statement-level
-- triggers on checkpoints and checkpoint_writes: the same statement that writes also records
-- activity (no extra round trip), and writes by any client (the official saver on an adopted
-- schema, the importer, psql) are tracked too. The importer sets threadline.activity_at to the
-- source's timestamp so imported threads expire from their real last activity.
CREATE TABLE IF NOT EXISTS :SCHEMA.checkpoint_threads (
  thread_id TEXT PRIMARY KEY,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_activity TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Serves the TTL sweep (oldest first) without scanning checkpoints.
CREATE INDEX IF NOT EXISTS checkpoint_threads_last_activity_idx
  ON :SCHEMA.checkpoint_threads (last_activity);

-- Parses a checkpoint's ts, or NULL when it is missing or malformed.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_parse_ts(ts TEXT) RETURNS TIMESTAMPTZ
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN ts::timestamptz;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;

-- The activity time of the current statement: the importer's source time when it set one.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_activity_at() RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('threadline.activity_at', true), '')::timestamptz, now())
$$;

CREATE OR REPLACE FUNCTION :SCHEMA.threadline_touch_threads() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- ORDER BY: several threads in one statement (importer batches) lock rows in one order.
  INSERT INTO :SCHEMA.checkpoint_threads AS t (thread_id, created_at, last_activity)
  SELECT DISTINCT n.thread_id, :SCHEMA.threadline_activity_at(), :SCHEMA.threadline_activity_at()
  FROM new_rows n
  -- A plain read first: an upsert that decides not to update still locks the row, and a row
  -- lock is a heap write plus a WAL record on every checkpoint write of an active thread.
  WHERE NOT EXISTS (
    SELECT 1 FROM :SCHEMA.checkpoint_threads c
    WHERE c.thread_id = n.thread_id
      AND c.last_activity >= :SCHEMA.threadline_activity_at() - interval '1 second'
  )
  ORDER BY n.thread_id
  ON CONFLICT (thread_id) DO UPDATE
    SET last_activity = EXCLUDED.last_activity
    -- Never move activity backwards (imports of old data), and skip rewriting a row touched
    -- less than a second ago: a chat turn writes ~5 times within milliseconds, and each
    -- rewrite costs a new row version plus an index entry. A thread's activity is therefore
    -- at most one second stale, and only while it is active, far from any TTL boundary.
    WHERE EXCLUDED.last_activity > t.last_activity + interval '1 second';
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER checkpoints_touch_thread
  AFTER INSERT ON :SCHEMA.checkpoints
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION :SCHEMA.threadline_touch_threads();

CREATE OR REPLACE TRIGGER checkpoint_writes_touch_thread
  AFTER INSERT ON :SCHEMA.checkpoint_writes
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION :SCHEMA.threadline_touch_threads();

-- Adoption: threads written before Threadline get their activity from their checkpoints' ts
-- (never "now" while any ts is readable), so old conversations do expire.
INSERT INTO :SCHEMA.checkpoint_threads (thread_id, created_at, last_activity)
SELECT thread_id, coalesce(min(ts), now()), coalesce(max(ts), now())
FROM (
  SELECT thread_id, :SCHEMA.threadline_parse_ts(checkpoint ->> 'ts') AS ts
  FROM :SCHEMA.checkpoints
) s
GROUP BY thread_id
ON CONFLICT (thread_id) DO NOTHING;

-- 0018 put gate keeps its plan
-- threadline_lock_for_put (0010) counted a put's stored delta bases with one statement over
-- unnest() of the three arrays. The planner cannot know those arrays' lengths in a generic plan
-- (it guesses 10 rows where a put has one or two bases), so PL/pgSQL's plan cache judged every
-- generic plan dearer than a custom one and planned the statement again on every put: with
-- pg_stat_statements, 1 539 plans for 1 520 calls under the HTTP load benchmark, 0.15 ms of
-- planning against 0.05 ms of execution each, about a tenth of Postgres's CPU per chat turn.
-- Now each base is one primary-key probe with scalar parameters, whose generic plan costs what a
-- custom one does, so it is planned a few times per connection and then reused. Same signature,
-- lock and result: true when every non-NULL base (channel, version, xmin) is still stored.

CREATE OR REPLACE FUNCTION :SCHEMA.threadline_lock_for_put(
  tid text,
  ns text,
  channels text[],
  bases text[],
  base_xmins text[]
) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1953265522, hashtext(tid));
  -- Each probe is its own statement, so its snapshot is taken after the lock was granted.
  FOR i IN 1 .. coalesce(cardinality(bases), 0) LOOP
    CONTINUE WHEN bases[i] IS NULL;
    PERFORM 1 FROM :SCHEMA.checkpoint_blobs x
    WHERE x.thread_id = tid AND x.checkpoint_ns = ns
      AND x.channel = channels[i] AND x.version = bases[i] AND x.xmin::text = base_xmins[i];
    IF NOT FOUND THEN
      RETURN false;
    END IF;
  END LOOP;
  RETURN true;
END $$;

COMMENT ON FUNCTION :SCHEMA.threadline_lock_for_put(text, text, text[], text[], text[]) IS
  'Takes the thread''s write lock (until commit) and returns whether every delta base of a put is still stored.';

-- 0011 parse_ts stable
-- threadline_parse_ts was declared IMMUTABLE, but `text::timestamptz` reads the session's
-- TimeZone (a ts without an offset) and DateStyle (field order of 01/02/2024), and accepts
-- 'now': the same text gave different instants in different sessions. It now parses with the
-- zone pinned to UTC and the date order pinned to ISO/YMD, so a text always means one instant,
-- and is STABLE (the honest class: 'now' still depends on the transaction). Nothing indexes it;
-- its one caller is 0003's backfill of thread activity.
CREATE OR REPLACE FUNCTION :SCHEMA.threadline_parse_ts(ts TEXT) RETURNS TIMESTAMPTZ
LANGUAGE plpgsql STABLE
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
BEGIN
  RETURN ts::timestamptz;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;

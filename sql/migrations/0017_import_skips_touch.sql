-- 0017 import skips the activity trigger
-- The importer upserts every thread's checkpoint_threads row itself, with the source's times,
-- before it writes the thread's rows, and marks its transaction with
-- threadline.activity_at = '-infinity' (src/importer/writer.ts). For such rows 0003's trigger
-- always found the thread's row and did nothing, at the price of a PL/pgSQL call and an index
-- probe per inserted row: about 5 us each, some 12 us of server CPU per imported checkpoint
-- (decision I17). A WHEN condition is evaluated without calling the function, so those rows now
-- skip it; every other writer (no setting, or any other value) fires it exactly as before.
-- Row-level, as Citus needs (0012, 0014).

CREATE OR REPLACE TRIGGER checkpoints_touch_thread
  BEFORE INSERT ON :SCHEMA.checkpoints
  FOR EACH ROW
  WHEN (current_setting('threadline.activity_at', true) IS DISTINCT FROM '-infinity')
  EXECUTE FUNCTION :SCHEMA.threadline_touch_thread();

CREATE OR REPLACE TRIGGER checkpoint_writes_touch_thread
  BEFORE INSERT ON :SCHEMA.checkpoint_writes
  FOR EACH ROW
  WHEN (current_setting('threadline.activity_at', true) IS DISTINCT FROM '-infinity')
  EXECUTE FUNCTION :SCHEMA.threadline_touch_thread();

-- 0005 import journal
-- One row per thread brought in by `threadline import-redis`, written in the same transaction
-- as the thread's rows, so an interrupted import resumes where it stopped: a thread whose
-- fingerprint (history mode + latest checkpoint id per namespace in the source) is already
-- journaled is skipped without being converted or written again, while a thread that moved on
-- in the source since (new latest checkpoint) is imported again (inserts stay idempotent).
CREATE TABLE IF NOT EXISTS :SCHEMA.threadline_import_journal (
  thread_id TEXT PRIMARY KEY,
  -- The Redis the thread came from (URL without credentials), for the operator.
  source TEXT NOT NULL,
  -- Source formats of the thread's checkpoints, comma separated (e.g. 'python').
  source_format TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  checkpoints INTEGER NOT NULL,
  writes INTEGER NOT NULL,
  imported_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

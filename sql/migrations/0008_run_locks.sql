-- 0008 run locks
-- A lock a run holds across many transactions without holding a session: the cleanup schedule
-- takes one per sweep, so that several service instances sweep one at a time and once per cron
-- tick. Unlike a session advisory lock it works through a transaction-mode pooler (PgBouncer),
-- where consecutive statements of one client may run on different server connections.
-- `locked_until` bounds a lock whose holder died; `last_tick` is the latest cron slot claimed.
CREATE TABLE IF NOT EXISTS :SCHEMA.threadline_run_locks (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  locked_until TIMESTAMPTZ NOT NULL,
  last_tick TIMESTAMPTZ
);

-- 0001 checkpoint tables
-- The four tables of @langchain/langgraph-checkpoint-postgres 1.0.x, with the same names and
-- columns. IF NOT EXISTS lets Threadline adopt a schema the official saver created: its rows stay
-- as they are and remain readable. The official ledger is filled up to its v4 so that
-- PostgresSaver.setup() on this schema is a no-op and both savers can share it.
CREATE TABLE IF NOT EXISTS :SCHEMA.checkpoint_migrations (
  v INTEGER PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS :SCHEMA.checkpoints (
  thread_id TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL DEFAULT '',
  checkpoint_id TEXT NOT NULL,
  parent_checkpoint_id TEXT,
  type TEXT,
  checkpoint JSONB NOT NULL,
  metadata JSONB NOT NULL DEFAULT '{}',
  PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);

CREATE TABLE IF NOT EXISTS :SCHEMA.checkpoint_blobs (
  thread_id TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL DEFAULT '',
  channel TEXT NOT NULL,
  version TEXT NOT NULL,
  type TEXT NOT NULL,
  blob BYTEA,
  PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

CREATE TABLE IF NOT EXISTS :SCHEMA.checkpoint_writes (
  thread_id TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL DEFAULT '',
  checkpoint_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  channel TEXT NOT NULL,
  type TEXT,
  blob BYTEA NOT NULL,
  PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- The official v4 step, idempotent here.
ALTER TABLE :SCHEMA.checkpoint_blobs ALTER COLUMN blob DROP NOT NULL;

INSERT INTO :SCHEMA.checkpoint_migrations (v)
SELECT generate_series(0, 4)
ON CONFLICT (v) DO NOTHING;

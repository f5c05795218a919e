-- 0002 write order and delta blobs (additive columns only)
-- task_path: putWrites(taskPath) of the checkpoint 1.2 contract; pending writes are returned in
--   (task_path, task_id, idx) order. Rows written by the official saver get '' and sort first,
--   which is where the contract places writes without a path.
-- delta_base: when set, the blob holds only the elements appended to an array channel since
--   version delta_base of the same channel (type 'delta'); readers follow the chain to the
--   nearest full value. Rows with delta_base NULL are plain official blobs.
-- delta_root: the version of that nearest full value, so a reader fetches a whole chain with one
--   index lookup instead of walking it row by row (a recursive query costs a join per delta).
ALTER TABLE :SCHEMA.checkpoint_writes ADD COLUMN IF NOT EXISTS task_path TEXT NOT NULL DEFAULT '';
ALTER TABLE :SCHEMA.checkpoint_blobs ADD COLUMN IF NOT EXISTS delta_base TEXT;
ALTER TABLE :SCHEMA.checkpoint_blobs ADD COLUMN IF NOT EXISTS delta_root TEXT;

-- Serves the chain lookup; only delta rows are indexed, so official-style rows cost nothing.
CREATE INDEX IF NOT EXISTS checkpoint_blobs_delta_root_idx
  ON :SCHEMA.checkpoint_blobs (thread_id, checkpoint_ns, channel, delta_root)
  WHERE delta_root IS NOT NULL;

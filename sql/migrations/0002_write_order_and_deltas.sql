-- 0002 write order and delta blobs (additive columns only)
-- task_path: putWrites(taskPath) of the checkpoint 1.2 contract; pending writes are returned in
--   (task_path, task_id, idx) order. Rows written by the official saver get '' and sort first,
--   which is where the contract places writes without a path.
-- delta_base: when set, the blob holds only the elements appended to an array channel since
--   version delta_base of the same channel (type 'delta'); readers follow the chain to the
--   nearest full value. Rows with delta_base NULL are plain official blobs.
ALTER TABLE :SCHEMA.checkpoint_writes ADD COLUMN IF NOT EXISTS task_path TEXT NOT NULL DEFAULT '';
ALTER TABLE :SCHEMA.checkpoint_blobs ADD COLUMN IF NOT EXISTS delta_base TEXT;

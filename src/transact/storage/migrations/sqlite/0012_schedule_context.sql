-- Schedules created at run time carry a context (pickled, passed to every run next to the tick)
-- and may name a queue their runs are enqueued on instead of started. Both NULL for schedules
-- declared in code.
ALTER TABLE schedules ADD COLUMN context BLOB;
ALTER TABLE schedules ADD COLUMN queue_name TEXT;

-- A partitioned queue's queue-wide concurrency limit (PENDING across all partitions and
-- processes); its other limits apply per partition. NULL: no limit.
ALTER TABLE queues ADD COLUMN global_concurrency INTEGER;

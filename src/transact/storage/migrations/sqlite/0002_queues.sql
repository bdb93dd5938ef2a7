-- Queues, version 2 (SQLite). Same logical shape as postgres/0002_queues.sql.
-- queue_promote / queue_probe: delayed work by due time
CREATE INDEX ws_queue_delayed_idx ON workflow_status (queue_name, available_at)
    WHERE status = 'DELAYED';
-- queue_claim and queue_partitions on partitioned queues: ready work per partition in claim order
CREATE INDEX ws_queue_partition_ready_idx ON workflow_status (queue_name, queue_partition_key, priority, created_at)
    WHERE status = 'ENQUEUED' AND queue_partition_key IS NOT NULL;

-- Queues, version 2 (Postgres). Same logical shape as sqlite/0002_queues.sql.
-- queue_promote / queue_probe: delayed work by due time
CREATE INDEX ws_queue_delayed_idx ON workflow_status (queue_name, available_at)
    WHERE status = 'DELAYED';
-- queue_claim and queue_partitions on partitioned queues: ready work per partition in claim order
CREATE INDEX ws_queue_partition_ready_idx ON workflow_status (queue_name, queue_partition_key, priority, created_at)
    WHERE status = 'ENQUEUED' AND queue_partition_key IS NOT NULL;

-- A delayed enqueue wakes the dispatchers of its queue, which then promote it at available_at
-- (ENQUEUED rows already notify through notify_status()).
CREATE FUNCTION notify_delayed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('transact', 'queue|' || NEW.queue_name || '|delayed');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER workflow_status_delayed_notify AFTER INSERT ON workflow_status
    FOR EACH ROW WHEN (NEW.status = 'DELAYED') EXECUTE FUNCTION notify_delayed();

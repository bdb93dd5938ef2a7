-- Queues, version 2 (Postgres). Same logical shape as sqlite/0002_queues.sql.
-- queue_promote / queue_probe: delayed work by due time
CREATE INDEX ws_queue_delayed_idx ON workflow_status (queue_name, available_at)
    WHERE status = 'DELAYED';
-- queue_claim and queue_partitions on partitioned queues: ready work per partition in claim order
CREATE INDEX ws_queue_partition_ready_idx ON workflow_status (queue_name, queue_partition_key, priority, created_at)
    WHERE status = 'ENQUEUED' AND queue_partition_key IS NOT NULL;

-- Wake the dispatchers of a queue with a reason (key) the generic ENQUEUED notification lacks:
-- "delayed": delayed work was enqueued (they schedule its promotion at available_at);
-- "requeued": a running workflow went back to the queue (adopted or released), freeing a slot.
CREATE FUNCTION notify_queue_key() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('transact', 'queue|' || NEW.queue_name || '|' || TG_ARGV[0]);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER workflow_status_delayed_notify AFTER INSERT ON workflow_status
    FOR EACH ROW WHEN (NEW.status = 'DELAYED') EXECUTE FUNCTION notify_queue_key('delayed');
CREATE TRIGGER workflow_status_requeued_notify AFTER UPDATE OF status ON workflow_status
    FOR EACH ROW WHEN (OLD.status = 'PENDING' AND NEW.status = 'ENQUEUED' AND NEW.queue_name IS NOT NULL)
    EXECUTE FUNCTION notify_queue_key('requeued');

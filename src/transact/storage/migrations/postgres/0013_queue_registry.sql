-- The queue registry: each queue's limits, shared by every process and client of this database.
-- A dispatcher caches these rows; any change NOTIFYs 'qconf|<queue>|' so every dispatcher
-- re-reads them before its next claim. NULL: no limit. app_version: the application version
-- that last wrote the limits (update_if_latest_version).
CREATE TABLE queues (
    queue_name          TEXT PRIMARY KEY,
    concurrency         INTEGER,
    worker_concurrency  INTEGER,
    rate_limit          INTEGER,
    rate_period_ms      BIGINT,
    priority_enabled    INTEGER NOT NULL DEFAULT 0,
    partitioned         INTEGER NOT NULL DEFAULT 0,
    poll_ms             BIGINT,
    app_version         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE FUNCTION notify_queue_config() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('transact', 'qconf|' || OLD.queue_name || '|');
    ELSE
        PERFORM pg_notify('transact', 'qconf|' || NEW.queue_name || '|');
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER queues_notify AFTER INSERT OR UPDATE OR DELETE ON queues
    FOR EACH ROW EXECUTE FUNCTION notify_queue_config();
-- A delayed workflow's due time moved (set_workflow_delay): its queue's dispatchers re-plan.
CREATE TRIGGER workflow_status_delay_moved_notify AFTER UPDATE OF available_at ON workflow_status
    FOR EACH ROW WHEN (NEW.status = 'DELAYED' AND NEW.available_at IS DISTINCT FROM OLD.available_at)
    EXECUTE FUNCTION notify_queue_key('delayed');

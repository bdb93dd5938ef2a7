-- Transact system schema, version 1 (Postgres). Same logical shape as sqlite/0001_initial.sql.
-- Times are epoch milliseconds passed in by the engine (SQL never calls now()), values are
-- serialized bytes. Tables live in schema "transact" (search_path is set per connection).

CREATE TABLE workflow_status (
    workflow_id         TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    name                TEXT NOT NULL,
    class_name          TEXT,
    config_name         TEXT,
    queue_name          TEXT,
    queue_partition_key TEXT,
    deduplication_id    TEXT,
    priority            INTEGER NOT NULL DEFAULT 0,
    inputs              BYTEA,
    output              BYTEA,
    error               BYTEA,
    executor_id         TEXT,
    app_version         TEXT,
    recovery_attempts   INTEGER NOT NULL DEFAULT 0,
    parent_workflow_id  TEXT,
    forked_from         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    available_at        BIGINT,
    started_at          BIGINT,
    timeout_ms          BIGINT,
    deadline_at         BIGINT
);
-- list_workflows: newest/oldest first, optionally by status or name
CREATE INDEX ws_created_idx ON workflow_status (created_at);
CREATE INDEX ws_status_created_idx ON workflow_status (status, created_at);
CREATE INDEX ws_name_created_idx ON workflow_status (name, created_at);
CREATE INDEX ws_id_prefix_idx ON workflow_status (workflow_id text_pattern_ops);
-- queue_claim: ready work in claim order
CREATE INDEX ws_queue_ready_idx ON workflow_status (queue_name, priority, created_at)
    WHERE status = 'ENQUEUED';
-- queue_claim: running work per queue (global concurrency) and rate-limiter window
CREATE INDEX ws_queue_active_idx ON workflow_status (queue_name, queue_partition_key, executor_id)
    WHERE status = 'PENDING' AND queue_name IS NOT NULL;
CREATE INDEX ws_queue_started_idx ON workflow_status (queue_name, started_at)
    WHERE queue_name IS NOT NULL AND started_at IS NOT NULL;
-- recovery and adoption: pending work by owner
CREATE INDEX ws_executor_pending_idx ON workflow_status (executor_id) WHERE status = 'PENDING';
CREATE INDEX ws_parent_idx ON workflow_status (parent_workflow_id) WHERE parent_workflow_id IS NOT NULL;
-- an active deduplication id is unique per queue
CREATE UNIQUE INDEX ws_dedup_idx ON workflow_status (queue_name, deduplication_id)
    WHERE deduplication_id IS NOT NULL AND status IN ('ENQUEUED', 'PENDING', 'DELAYED');

CREATE TABLE operation_outputs (
    workflow_id       TEXT NOT NULL REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    function_id       INTEGER NOT NULL,
    function_name     TEXT NOT NULL,
    output            BYTEA,
    error             BYTEA,
    child_workflow_id TEXT,
    started_at        BIGINT,
    completed_at      BIGINT,
    PRIMARY KEY (workflow_id, function_id)
);

CREATE TABLE notifications (
    message_id      BIGSERIAL PRIMARY KEY,
    destination_id  TEXT NOT NULL REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    topic           TEXT NOT NULL DEFAULT '',
    message         BYTEA NOT NULL,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX notifications_take_idx ON notifications (destination_id, topic, message_id);
CREATE UNIQUE INDEX notifications_idem_idx ON notifications (destination_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE workflow_events (
    workflow_id TEXT NOT NULL REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, key)
);

CREATE TABLE streams (
    workflow_id TEXT NOT NULL REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    value       BYTEA,
    closed      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (workflow_id, key, seq)
);

CREATE TABLE executors (
    executor_id   TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    process_token TEXT NOT NULL,
    app_version   TEXT,
    started_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'RUNNING'
);

CREATE TABLE schedules (
    schedule_name TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    cron          TEXT NOT NULL,
    timezone      TEXT,
    state         TEXT NOT NULL DEFAULT 'ACTIVE',
    backfill      BOOLEAN NOT NULL DEFAULT FALSE,
    dynamic       BOOLEAN NOT NULL DEFAULT FALSE,
    last_tick_at  BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Push wake-ups: one channel, payload "kind|id|key". Notifications are hints; readers re-read tables.
CREATE FUNCTION notify_message() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('transact', 'msg|' || NEW.destination_id || '|' || NEW.topic);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER notifications_notify AFTER INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION notify_message();

CREATE FUNCTION notify_event() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('transact', 'event|' || NEW.workflow_id || '|' || NEW.key);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER workflow_events_notify AFTER INSERT OR UPDATE ON workflow_events
    FOR EACH ROW EXECUTE FUNCTION notify_event();

CREATE FUNCTION notify_stream() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('transact', 'stream|' || NEW.workflow_id || '|' || NEW.key);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER streams_notify AFTER INSERT ON streams
    FOR EACH ROW EXECUTE FUNCTION notify_stream();

-- Enqueues wake idle workers; terminal states wake result waiters in other processes;
-- cancellations wake the running workflow's process.
CREATE FUNCTION notify_status() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'ENQUEUED' AND (TG_OP = 'INSERT' OR OLD.status <> 'ENQUEUED') THEN
        PERFORM pg_notify('transact', 'queue|' || NEW.queue_name || '|');
    ELSIF TG_OP = 'UPDATE' AND NEW.status <> OLD.status
          AND NEW.status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED') THEN
        PERFORM pg_notify('transact', 'done|' || NEW.workflow_id || '|');
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER workflow_status_notify AFTER INSERT OR UPDATE OF status ON workflow_status
    FOR EACH ROW EXECUTE FUNCTION notify_status();

CREATE FUNCTION notify_executor() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('transact', 'executor|' || OLD.executor_id || '|');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER executors_notify AFTER DELETE OR UPDATE OF state ON executors
    FOR EACH ROW EXECUTE FUNCTION notify_executor();

-- Step outcomes keyed by one integer, the table's own rowid: (workflow seq << 28) + function id.
-- The (workflow_id, function_id) primary key kept a second b-tree beside the table: every
-- checkpoint wrote a leaf of each, and the index's 36-byte keys split pages often (the fenced
-- insert alone: p50 8.4 -> 6.4 us, p90 12.7 -> 6.8 us with one b-tree). Outputs up to ~4 KB still
-- fit in the table's leaf (WITHOUT ROWID would spill them to overflow pages past ~1 KB).
-- seq is workflow_status's rowid, made an INTEGER PRIMARY KEY so that it is stable (VACUUM may
-- renumber implicit rowids) and free: the insert assigns it, no extra index. Both tables are
-- rebuilt; the driver runs this with foreign keys off and checks them before committing.
-- The engine caps function ids at 2^28 - 1 (rows.MAX_FUNCTION_ID, and a CHECK); a trigger caps seq
-- below 2^35 - 1; another deletes a workflow's steps with its row.
CREATE TABLE workflow_status_keyed (
    workflow_id         TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL,
    name                TEXT NOT NULL,
    class_name          TEXT,
    config_name         TEXT,
    queue_name          TEXT,
    queue_partition_key TEXT,
    deduplication_id    TEXT,
    priority            INTEGER NOT NULL DEFAULT 0,
    inputs              BLOB,
    output              BLOB,
    error               BLOB,
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
    deadline_at         BIGINT,
    seq                 INTEGER PRIMARY KEY
);
INSERT INTO workflow_status_keyed
    SELECT workflow_id, status, name, class_name, config_name, queue_name, queue_partition_key,
           deduplication_id, priority, inputs, output, error, executor_id, app_version, recovery_attempts,
           parent_workflow_id, forked_from, created_at, updated_at, available_at, started_at, timeout_ms,
           deadline_at, rowid
    FROM workflow_status ORDER BY rowid;
CREATE TABLE operation_outputs_keyed (
    step_key          INTEGER PRIMARY KEY,
    workflow_id       TEXT NOT NULL,
    function_id       INTEGER NOT NULL CHECK (function_id BETWEEN 0 AND 268435455),
    function_name     TEXT NOT NULL,
    output            BLOB,
    error             BLOB,
    child_workflow_id TEXT,
    started_at        BIGINT,
    completed_at      BIGINT
);
INSERT INTO operation_outputs_keyed
    SELECT (w.seq << 28) + o.function_id, o.workflow_id, o.function_id, o.function_name, o.output, o.error,
           o.child_workflow_id, o.started_at, o.completed_at
    FROM operation_outputs o JOIN workflow_status_keyed w ON w.workflow_id = o.workflow_id
    ORDER BY 1;
DROP TABLE operation_outputs;
DROP TABLE workflow_status;
ALTER TABLE workflow_status_keyed RENAME TO workflow_status;
ALTER TABLE operation_outputs_keyed RENAME TO operation_outputs;
CREATE INDEX ws_created_idx ON workflow_status (created_at);
CREATE INDEX ws_status_created_idx ON workflow_status (status, created_at);
CREATE INDEX ws_name_created_idx ON workflow_status (name, created_at);
CREATE INDEX ws_queue_ready_idx ON workflow_status (queue_name, priority, created_at)
    WHERE status = 'ENQUEUED';
CREATE INDEX ws_queue_active_idx ON workflow_status (queue_name, queue_partition_key, executor_id)
    WHERE status = 'PENDING' AND queue_name IS NOT NULL;
CREATE INDEX ws_queue_started_idx ON workflow_status (queue_name, started_at)
    WHERE queue_name IS NOT NULL AND started_at IS NOT NULL;
CREATE INDEX ws_executor_pending_idx ON workflow_status (executor_id) WHERE status = 'PENDING';
CREATE INDEX ws_parent_idx ON workflow_status (parent_workflow_id) WHERE parent_workflow_id IS NOT NULL;
CREATE UNIQUE INDEX ws_dedup_idx ON workflow_status (queue_name, deduplication_id)
    WHERE deduplication_id IS NOT NULL AND status IN ('ENQUEUED', 'PENDING', 'DELAYED');
CREATE INDEX ws_queue_delayed_idx ON workflow_status (queue_name, available_at)
    WHERE status = 'DELAYED';
CREATE INDEX ws_queue_partition_ready_idx ON workflow_status (queue_name, queue_partition_key, priority, created_at)
    WHERE status = 'ENQUEUED' AND queue_partition_key IS NOT NULL;
-- The highest seq whose step range, (seq + 1) << 28, still fits in a signed 64-bit integer.
CREATE TRIGGER ws_seq_limit AFTER INSERT ON workflow_status FOR EACH ROW WHEN NEW.seq >= 34359738367
BEGIN
    SELECT RAISE(ABORT, 'this SQLite database has used all 34,359,738,366 workflow numbers; archive it and start a new one');
END;
-- A workflow's steps go with it, however it is deleted (the foreign key's cascade did this before;
-- a reused seq must find its range empty).
CREATE TRIGGER ws_delete_steps AFTER DELETE ON workflow_status FOR EACH ROW
BEGIN
    DELETE FROM operation_outputs WHERE step_key >= (OLD.seq << 28) AND step_key < ((OLD.seq + 1) << 28);
END;

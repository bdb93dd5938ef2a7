-- Lean hot-path writes.
--
-- 1. Step checkpoints no longer carry a foreign key to workflow_status. The key's check took a
--    row lock (FOR KEY SHARE) on the workflow for every checkpoint: a heap write and a WAL record
--    each, about a fifth of the server's work per three-step workflow. The checkpoint's own fence
--    (workflow PENDING and owned by the writer) already refuses steps of unknown workflows, and
--    deleting a workflow deletes its steps explicitly (storage/admin.py).
ALTER TABLE operation_outputs DROP CONSTRAINT IF EXISTS operation_outputs_workflow_id_fkey;

-- 2. The status trigger runs only when it has something to say (a WHEN clause costs no function
--    call): an insert only when enqueued, an update only on a change to ENQUEUED or to a final state.
DROP TRIGGER IF EXISTS workflow_status_notify ON workflow_status;
CREATE TRIGGER workflow_status_insert_notify AFTER INSERT ON workflow_status
    FOR EACH ROW WHEN (NEW.status = 'ENQUEUED') EXECUTE FUNCTION notify_status();
CREATE TRIGGER workflow_status_update_notify AFTER UPDATE OF status ON workflow_status
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN
        ('ENQUEUED', 'SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED'))
    EXECUTE FUNCTION notify_status();

-- 3. Workflow ids compare bytewise (they are opaque identifiers), so the primary key also serves
--    id-prefix searches as a range; the separate text_pattern_ops index (one more index entry per
--    insert and per status change) goes.
ALTER TABLE workflow_status ALTER COLUMN workflow_id TYPE TEXT COLLATE "C";
DROP INDEX IF EXISTS ws_id_prefix_idx;


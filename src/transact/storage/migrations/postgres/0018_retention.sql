-- Retention: garbage collection finds finished workflows by completion time (a finished row's
-- updated_at never moves again) through this partial index, oldest first, so each batch reads only
-- rows it deletes, however much history there is. Only finished rows are in it: an insert and a
-- step write nothing here, a finish one index entry.
-- workflow_id orders a millisecond's ties, so "keep the newest N" is exact and its boundary
-- is read from the index alone.
CREATE INDEX ws_finished_idx ON workflow_status (updated_at, workflow_id)
    WHERE status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED');
-- Deleting a workflow deletes its messages (the foreign key's cascade looks them up by
-- destination). The recv indexes are partial (unread; with an idempotency key), so without this
-- one each delete scanned every message ever kept.
CREATE INDEX notifications_dest_idx ON notifications (destination_id);

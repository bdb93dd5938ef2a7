-- list_workflows filters, each served by an index that yields created_at order, so a filtered
-- "newest N" stops after N rows instead of sorting every match. Partial (NOT NULL) where most
-- rows have no value, so those rows cost no index write.
CREATE INDEX ws_queue_created_idx ON workflow_status (queue_name, created_at) WHERE queue_name IS NOT NULL;
CREATE INDEX ws_app_version_created_idx ON workflow_status (app_version, created_at) WHERE app_version IS NOT NULL;
CREATE INDEX ws_executor_created_idx ON workflow_status (executor_id, created_at) WHERE executor_id IS NOT NULL;
CREATE INDEX ws_user_created_idx ON workflow_status (authenticated_user, created_at)
    WHERE authenticated_user IS NOT NULL;
CREATE INDEX ws_forked_created_idx ON workflow_status (forked_from, created_at) WHERE forked_from IS NOT NULL;
-- Children by parent in creation order; it also serves the descendant walks of cancel, resume and
-- delete, so it replaces the parent-only index.
CREATE INDEX ws_parent_created_idx ON workflow_status (parent_workflow_id, created_at)
    WHERE parent_workflow_id IS NOT NULL;
DROP INDEX IF EXISTS ws_parent_idx;
-- Finish times: nothing updates a row while it is in a final status (a resume moves it out of
-- them first), so its updated_at is when it finished. Written once per finish.
CREATE INDEX ws_completed_idx ON workflow_status (updated_at)
    WHERE status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED');

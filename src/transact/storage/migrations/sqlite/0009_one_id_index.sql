-- The primary key's own index already serves workflow-id prefixes (a range, storage/admin.py);
-- the second index on workflow_id only cost one more index write per workflow.
DROP INDEX IF EXISTS ws_id_prefix_idx;

-- list_workflows filters, each served by an index that yields created_at order, so a filtered
-- "newest N" stops after N rows instead of sorting every match. Partial (NOT NULL) where most
-- rows have no value, so those rows cost no index write. Application version, executor and finish
-- time get no index of their own: nearly every row has them (or changes them on claim and finish),
-- and the three index writes cost about 15 % of SQLite's start throughput (bench/). Those filters
-- walk ws_created_idx newest first, which stops early for the common case of a value most rows share.
CREATE INDEX ws_queue_created_idx ON workflow_status (queue_name, created_at) WHERE queue_name IS NOT NULL;
CREATE INDEX ws_user_created_idx ON workflow_status (authenticated_user, created_at)
    WHERE authenticated_user IS NOT NULL;
CREATE INDEX ws_forked_created_idx ON workflow_status (forked_from, created_at) WHERE forked_from IS NOT NULL;
-- Children by parent in creation order; it also serves the descendant walks of cancel, resume and
-- delete, so it replaces the parent-only index.
CREATE INDEX ws_parent_created_idx ON workflow_status (parent_workflow_id, created_at)
    WHERE parent_workflow_id IS NOT NULL;
DROP INDEX IF EXISTS ws_parent_idx;

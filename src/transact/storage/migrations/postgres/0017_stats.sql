-- Workflow counts by status and name (metrics, `transact stats`) walk this index alone instead of
-- the table: on a million rows an index-only grouped walk, where the table scan grows with row
-- width (inputs, outputs). Costs one more index entry per start and per status change.
CREATE INDEX ws_status_name_idx ON workflow_status (status, name);

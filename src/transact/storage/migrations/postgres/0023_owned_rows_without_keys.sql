-- Messages, events and streams no longer carry a foreign key to workflow_status (steps lost theirs
-- in 0008). A cascading key deletes through one trigger query per deleted workflow and table: a
-- third of the server's work when retention deletes thousands of workflows a second. Where these
-- rows are written, the workflow's existence is checked (send's EXISTS; events and streams are
-- written by the running workflow itself), and every delete of a workflow deletes what it owns by
-- one set-wise statement per table, then sweeps once more after commit (storage: owned_deletes).
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_destination_id_fkey;
ALTER TABLE workflow_events DROP CONSTRAINT IF EXISTS workflow_events_workflow_id_fkey;
ALTER TABLE streams DROP CONSTRAINT IF EXISTS streams_workflow_id_fkey;

-- Who started a workflow: the authenticated user, the role the call assumed, and the user's roles
-- (a JSON array of strings). Recorded at the start so recovery and child workflows run as the same
-- user. Nullable: a workflow started without authentication records none.
ALTER TABLE workflow_status ADD COLUMN authenticated_user TEXT;
ALTER TABLE workflow_status ADD COLUMN assumed_role TEXT;
ALTER TABLE workflow_status ADD COLUMN authenticated_roles TEXT;

-- Applications sharing one system database: each workflow, registered queue and schedule belongs
-- to the application (config name) that created it. Only the owner dequeues, runs and recovers a
-- workflow, polls a queue and fires a schedule. NULL is no owner: every row written before this
-- migration, and a client's enqueue that names no application; any application runs those, so an
-- upgrade and a single-application database behave as before. The claim and recovery scans test
-- the owner on rows their existing indexes already yield (one predicate, no extra index).
ALTER TABLE workflow_status ADD COLUMN application_name TEXT;
ALTER TABLE queues ADD COLUMN application_name TEXT;
ALTER TABLE schedules ADD COLUMN application_name TEXT;

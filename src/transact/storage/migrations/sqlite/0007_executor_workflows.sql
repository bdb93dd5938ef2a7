-- Executors publish the workflow names they can run, so operators can see stranded workflows
-- (owner gone, and no live process has that workflow registered).
ALTER TABLE executors ADD COLUMN workflow_names TEXT;

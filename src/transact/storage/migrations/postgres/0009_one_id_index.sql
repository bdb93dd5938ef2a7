-- Version 9 is SQLite's (a duplicate index on workflow_id); Postgres dropped its copy in 0008.
SELECT 1;

-- Version 10 is SQLite's (integer step keys); Postgres keeps its (workflow_id, function_id) key.
SELECT 1;

-- Version 22 is Postgres's (enqueue_workflow and send_message as SQL functions); SQLite has no
-- stored functions: a program on the SQLite file enqueues with an INSERT of the row (portable JSON).
SELECT 1;

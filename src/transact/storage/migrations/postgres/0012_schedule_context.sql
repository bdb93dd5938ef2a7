-- Schedules created at run time carry a context (pickled, passed to every run next to the tick)
-- and may name a queue their runs are enqueued on instead of started. Both NULL for schedules
-- declared in code. A change of either is a change of the definition: running schedulers reload.
ALTER TABLE schedules ADD COLUMN context BYTEA;
ALTER TABLE schedules ADD COLUMN queue_name TEXT;
DROP TRIGGER schedules_notify ON schedules;
CREATE TRIGGER schedules_notify
    AFTER INSERT OR DELETE OR UPDATE OF workflow_name, cron, timezone, state, backfill, dynamic, context, queue_name
    ON schedules
    FOR EACH ROW EXECUTE FUNCTION notify_schedule();

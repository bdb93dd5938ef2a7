-- Schedules: wake running schedulers when an operator creates, pauses, resumes or deletes a
-- schedule. Not on last_tick_at: that moves every tick in every process and needs no reload.
CREATE FUNCTION notify_schedule() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('transact', 'schedule|' || OLD.schedule_name || '|');
    ELSE
        PERFORM pg_notify('transact', 'schedule|' || NEW.schedule_name || '|');
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER schedules_notify
    AFTER INSERT OR DELETE OR UPDATE OF workflow_name, cron, timezone, state, backfill, dynamic ON schedules
    FOR EACH ROW EXECUTE FUNCTION notify_schedule();

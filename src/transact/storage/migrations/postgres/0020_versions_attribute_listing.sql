-- Application versions: every launched executor registers its application's version (first
-- launch wins the row; a relaunch changes nothing). The latest version of an application is the
-- one with the highest version_timestamp; promoting a version moves its timestamp past every
-- other's, so promoting an older one is a rollback. Rows are scoped by application name (several
-- applications may share one system database); '' is an application that named none.
CREATE TABLE application_versions (
    application_name TEXT NOT NULL,
    version_name TEXT NOT NULL,
    version_id TEXT NOT NULL UNIQUE,
    version_timestamp BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (application_name, version_name)
);
CREATE INDEX av_latest_idx ON application_versions (application_name, version_timestamp);

-- Attribute listing: list_workflows(attributes=...) asks for the newest rows holding a pair. The
-- GIN index of 0015 finds every holder, then all of them are sorted: fine for a rare pair, slow for
-- a pair a million rows hold, and no single plan suits both. Instead each top-level pair is a row
-- of workflow_attributes, indexed (key, value, created_at, workflow_id): the newest holders of a
-- pair are the end of one index range, whatever its size. A trigger keeps the table in step with
-- the column in the writing transaction; rows without attributes fire nothing.
CREATE TABLE workflow_attributes (
    workflow_id TEXT COLLATE "C" NOT NULL,
    key TEXT NOT NULL,
    value JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, key)
);
CREATE INDEX wa_newest_idx ON workflow_attributes (key, value, created_at, workflow_id);

CREATE FUNCTION sync_attributes() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM workflow_attributes WHERE workflow_id = OLD.workflow_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.attributes IS NOT NULL THEN
        INSERT INTO workflow_attributes (workflow_id, key, value, created_at)
        SELECT NEW.workflow_id, e.key, e.value, NEW.created_at FROM jsonb_each(NEW.attributes) e;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql
-- The schema the migration runs in, whatever the writer's search_path (the outbox writes through
-- the caller's connection).
SET search_path FROM CURRENT;
CREATE TRIGGER ws_attributes_insert AFTER INSERT ON workflow_status
    FOR EACH ROW WHEN (NEW.attributes IS NOT NULL) EXECUTE FUNCTION sync_attributes();
CREATE TRIGGER ws_attributes_update AFTER UPDATE OF attributes ON workflow_status
    FOR EACH ROW WHEN (OLD.attributes IS DISTINCT FROM NEW.attributes) EXECUTE FUNCTION sync_attributes();
CREATE TRIGGER ws_attributes_delete AFTER DELETE ON workflow_status
    FOR EACH ROW WHEN (OLD.attributes IS NOT NULL) EXECUTE FUNCTION sync_attributes();

INSERT INTO workflow_attributes (workflow_id, key, value, created_at)
SELECT w.workflow_id, e.key, e.value, w.created_at
FROM workflow_status w, jsonb_each(w.attributes) e WHERE w.attributes IS NOT NULL;
DROP INDEX ws_attributes_idx;

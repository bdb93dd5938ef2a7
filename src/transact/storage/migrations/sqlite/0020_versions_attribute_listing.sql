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
-- (key, value) index of 0015 finds every holder, then all of them are sorted: fine for a rare pair,
-- seconds for a pair a million rows hold. With the row's created_at beside each pair, the index
-- (key, value, created_at, workflow_id) yields the newest holders of a pair from the end of one
-- range, whatever its size. The triggers of 0015 are recreated to fill it.
ALTER TABLE workflow_attributes ADD COLUMN created_at INTEGER;
UPDATE workflow_attributes SET created_at =
    (SELECT w.created_at FROM workflow_status w WHERE w.workflow_id = workflow_attributes.workflow_id);
DROP INDEX wa_key_value_idx;
CREATE INDEX wa_newest_idx ON workflow_attributes (key, value, created_at, workflow_id);

DROP TRIGGER ws_attributes_insert;
DROP TRIGGER ws_attributes_update;

CREATE TRIGGER ws_attributes_insert AFTER INSERT ON workflow_status
WHEN NEW.attributes IS NOT NULL
BEGIN
    INSERT INTO workflow_attributes (workflow_id, key, value, created_at)
    SELECT NEW.workflow_id, key,
        CASE type WHEN 'text' THEN json_quote(value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
            WHEN 'null' THEN 'null' WHEN 'object' THEN json(value) WHEN 'array' THEN json(value) ELSE value END,
        NEW.created_at
    FROM json_each(NEW.attributes);
END;

CREATE TRIGGER ws_attributes_update AFTER UPDATE OF attributes ON workflow_status
WHEN OLD.attributes IS NOT NEW.attributes
BEGIN
    DELETE FROM workflow_attributes WHERE workflow_id = NEW.workflow_id;
    INSERT INTO workflow_attributes (workflow_id, key, value, created_at)
    SELECT NEW.workflow_id, key,
        CASE type WHEN 'text' THEN json_quote(value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
            WHEN 'null' THEN 'null' WHEN 'object' THEN json(value) WHEN 'array' THEN json(value) ELSE value END,
        NEW.created_at
    FROM json_each(NEW.attributes);
END;

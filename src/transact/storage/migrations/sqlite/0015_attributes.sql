-- Workflow attributes: a JSON object of user-chosen key/value pairs (SetWorkflowAttributes, the
-- enqueue option, update_workflow_attributes), stored as JSON text. SQLite has no index on the
-- inside of a JSON value, so each pair is also a row of workflow_attributes, indexed by
-- (key, value): list_workflows(attributes=...) finds matching workflows through that index.
-- Triggers keep the table in step with the column in the writing transaction, whatever writes it;
-- rows without attributes fire nothing. A value is stored in one canonical form: strings, true,
-- false and null as JSON text, numbers as SQL numbers (1 matches 1.0, as JSON numbers compare),
-- objects and arrays as minified JSON text (Transact writes them canonical: keys sorted, text
-- unescaped, so equal values are equal text). The list query computes the wanted value with
-- the same expression (storage/admin.py, ATTRIBUTE_VALUE), so the two always agree.
ALTER TABLE workflow_status ADD COLUMN attributes TEXT;

CREATE TABLE workflow_attributes (
    workflow_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value,
    PRIMARY KEY (workflow_id, key)
) WITHOUT ROWID;
CREATE INDEX wa_key_value_idx ON workflow_attributes (key, value);

CREATE TRIGGER ws_attributes_insert AFTER INSERT ON workflow_status
WHEN NEW.attributes IS NOT NULL
BEGIN
    INSERT INTO workflow_attributes (workflow_id, key, value)
    SELECT NEW.workflow_id, key,
        CASE type WHEN 'text' THEN json_quote(value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
            WHEN 'null' THEN 'null' WHEN 'object' THEN json(value) WHEN 'array' THEN json(value) ELSE value END
    FROM json_each(NEW.attributes);
END;

CREATE TRIGGER ws_attributes_update AFTER UPDATE OF attributes ON workflow_status
WHEN OLD.attributes IS NOT NEW.attributes
BEGIN
    DELETE FROM workflow_attributes WHERE workflow_id = NEW.workflow_id;
    INSERT INTO workflow_attributes (workflow_id, key, value)
    SELECT NEW.workflow_id, key,
        CASE type WHEN 'text' THEN json_quote(value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
            WHEN 'null' THEN 'null' WHEN 'object' THEN json(value) WHEN 'array' THEN json(value) ELSE value END
    FROM json_each(NEW.attributes);
END;

CREATE TRIGGER ws_attributes_delete AFTER DELETE ON workflow_status
WHEN OLD.attributes IS NOT NULL
BEGIN
    DELETE FROM workflow_attributes WHERE workflow_id = OLD.workflow_id;
END;

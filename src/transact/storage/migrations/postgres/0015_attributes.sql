-- Workflow attributes: a JSON object of user-chosen key/value pairs (SetWorkflowAttributes, the
-- enqueue option, update_workflow_attributes). list_workflows(attributes=...) finds rows holding
-- given pairs through the GIN index (containment, @>). Partial: most rows have no attributes, and
-- those cost no index write; a containment test implies NOT NULL, so the planner may use it.
ALTER TABLE workflow_status ADD COLUMN attributes JSONB;
CREATE INDEX ws_attributes_idx ON workflow_status USING GIN (attributes jsonb_path_ops)
    WHERE attributes IS NOT NULL;

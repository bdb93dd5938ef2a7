-- The W3C trace context (a JSON object of propagation headers) of the span that started or enqueued
-- a workflow: its run continues that trace wherever and whenever it executes. NULL when tracing is off.
ALTER TABLE workflow_status ADD COLUMN trace_context TEXT;

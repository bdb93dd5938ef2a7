-- Enqueue and send from plain SQL: enqueue_workflow(...) and send_message(...), callable from any
-- SQL on the system database (a trigger, a stored procedure, the caller's own transaction). They
-- write the rows DBOSClient.enqueue and DBOSClient.send write: arguments and messages in portable
-- JSON, the owner and the limits the queue registry gives, and the same wake-ups (the tables'
-- triggers NOTIFY at commit). A refused call raises a Postgres error naming the rule and writes
-- nothing (no subtransaction: the error aborts the caller's transaction, as any failed statement
-- does). Times are the database clock's epoch milliseconds.
--
-- Both run with the privileges of their caller (INSERT on the tables) and with the search_path
-- of this migration, so they find the tables whatever schema holds them and whatever the
-- caller's search_path. Parameters are spelled qualified (enqueue_workflow.x): several share a
-- name with a column.

-- Refuses a text argument as the clients do: empty, or (bounded: ids, topics and keys, which
-- travel in NOTIFY payloads) longer than 2,000 characters or more than one line. NULL passes.
CREATE FUNCTION check_text_argument(what TEXT, value TEXT, bounded BOOLEAN) RETURNS VOID AS $$
BEGIN
    IF value = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('%s must be a non-empty string', what);
    END IF;
    IF bounded AND length(value) > 2000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('%s is %s characters long; use at most 2000', what, length(value));
    END IF;
    IF bounded AND value ~ '[\r\n]' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('%s contains a line break; use a one-line string', what);
    END IF;
END $$ LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT;

CREATE FUNCTION enqueue_workflow(
    workflow_name TEXT,
    queue_name TEXT,
    positional_args JSON[] DEFAULT ARRAY[]::JSON[],
    named_args JSON DEFAULT '{}'::JSON,
    class_name TEXT DEFAULT NULL,
    config_name TEXT DEFAULT NULL,
    workflow_id TEXT DEFAULT NULL,
    app_version TEXT DEFAULT NULL,
    timeout_ms BIGINT DEFAULT NULL,
    deadline_epoch_ms BIGINT DEFAULT NULL,
    deduplication_id TEXT DEFAULT NULL,
    priority INTEGER DEFAULT NULL,
    queue_partition_key TEXT DEFAULT NULL,
    application_name TEXT DEFAULT NULL
) RETURNS TEXT AS $$
DECLARE
    at_ms BIGINT := floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
    wid TEXT := enqueue_workflow.workflow_id;
    qname TEXT := enqueue_workflow.queue_name;
    pkey TEXT := enqueue_workflow.queue_partition_key;
    dedup TEXT := enqueue_workflow.deduplication_id;
    app_owner TEXT := enqueue_workflow.application_name;
    q queues%ROWTYPE;
    args_json BYTEA;
    taken TEXT;
    holder TEXT;
BEGIN
    IF workflow_name IS NULL OR workflow_name = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'enqueue_workflow: workflow_name must be a non-empty string';
    END IF;
    IF qname IS NULL OR qname = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'enqueue_workflow: queue_name must be a non-empty string';
    END IF;
    PERFORM check_text_argument('enqueue_workflow: workflow_id', wid, TRUE);
    PERFORM check_text_argument('enqueue_workflow: class_name', enqueue_workflow.class_name, FALSE);
    PERFORM check_text_argument('enqueue_workflow: config_name', enqueue_workflow.config_name, FALSE);
    PERFORM check_text_argument('enqueue_workflow: app_version', enqueue_workflow.app_version, FALSE);
    PERFORM check_text_argument('enqueue_workflow: deduplication_id', dedup, FALSE);
    PERFORM check_text_argument('enqueue_workflow: queue_partition_key', pkey, FALSE);
    PERFORM check_text_argument('enqueue_workflow: application_name', app_owner, FALSE);
    IF enqueue_workflow.timeout_ms < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format(
            'enqueue_workflow: timeout_ms must be >= 0 (0 or NULL: no timeout), got %s', enqueue_workflow.timeout_ms);
    END IF;
    IF deadline_epoch_ms < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format(
            'enqueue_workflow: deadline_epoch_ms must be epoch milliseconds >= 0, got %s', deadline_epoch_ms);
    END IF;
    IF enqueue_workflow.priority < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format(
            'enqueue_workflow: priority must be an int >= 0, got %s', enqueue_workflow.priority);
    END IF;
    IF named_args IS NOT NULL AND json_typeof(named_args) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format(
            'enqueue_workflow: named_args must be a JSON object, got %s', json_typeof(named_args));
    END IF;

    -- The queue's own rules, when it is registered (an unregistered queue's rows wait for the
    -- application that declares it, as a client's do).
    SELECT * INTO q FROM queues WHERE queues.queue_name = qname;
    IF FOUND THEN
        IF enqueue_workflow.priority IS NOT NULL AND q.priority_enabled = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format(
                'enqueue_workflow: queue %L does not have priorities: declare it with '
                'Queue(%L, priority_enabled=True) to enqueue with a priority', qname, qname);
        END IF;
        IF q.partitioned <> 0 AND pkey IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format(
                'enqueue_workflow: queue %L is partitioned: pass queue_partition_key to enqueue on it', qname);
        END IF;
        IF q.partitioned = 0 AND pkey IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format(
                'enqueue_workflow: queue %L is not partitioned, so queue_partition_key %L cannot apply; '
                'declare it with Queue(%L, partition_queue=True) or drop the key', qname, pkey, qname);
        END IF;
        -- Another application's queue is polled by that application only: its work belongs to it.
        app_owner := COALESCE(app_owner, q.application_name);
    END IF;

    IF wid IS NULL THEN
        -- A UUID version 7 (time-ordered, like the ids Transact generates): the 48 leading bits
        -- are the epoch milliseconds, the version nibble 0111, the rest random.
        wid := encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send(at_ms) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::UUID::TEXT;
    END IF;
    args_json := convert_to(json_build_object(
        'positionalArgs', array_to_json(COALESCE(positional_args, ARRAY[]::JSON[])),
        'namedArgs', COALESCE(named_args, '{}'::JSON))::TEXT, 'UTF8');

    -- No conflict target: a taken id and an active deduplication id are both ignored, then told
    -- apart by a read (as the client's outbox write does).
    INSERT INTO workflow_status (
        workflow_id, status, name, class_name, config_name, queue_name, queue_partition_key,
        deduplication_id, priority, inputs, app_version, recovery_attempts, created_at, updated_at,
        timeout_ms, deadline_at, application_name)
    VALUES (
        wid, 'ENQUEUED', workflow_name, enqueue_workflow.class_name, enqueue_workflow.config_name, qname, pkey,
        dedup, COALESCE(enqueue_workflow.priority, 0), args_json, enqueue_workflow.app_version, 0, at_ms, at_ms,
        NULLIF(enqueue_workflow.timeout_ms, 0), deadline_epoch_ms, app_owner)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN wid;
    END IF;

    SELECT w.name INTO taken FROM workflow_status w WHERE w.workflow_id = wid;
    IF FOUND THEN
        -- Reusing an id never runs the workflow twice: the existing workflow is the answer.
        IF taken <> workflow_name THEN
            RAISE EXCEPTION USING ERRCODE = 'unique_violation', MESSAGE = format(
                'enqueue_workflow: workflow id %L already belongs to workflow %L; it cannot be reused for %L',
                wid, taken, workflow_name);
        END IF;
        RETURN wid;
    END IF;
    SELECT w.workflow_id INTO holder FROM workflow_status w
        WHERE w.queue_name = qname AND w.deduplication_id = dedup AND w.status IN ('ENQUEUED', 'PENDING', 'DELAYED');
    RAISE EXCEPTION USING ERRCODE = 'unique_violation', MESSAGE = format(
        'enqueue_workflow: cannot enqueue workflow %L: queue %L already has an active workflow with deduplication id %L',
        wid, qname, dedup), DETAIL = format('held by workflow %L', holder);
END $$ LANGUAGE plpgsql
SET search_path FROM CURRENT;

CREATE FUNCTION send_message(
    destination_id TEXT,
    message JSON,
    topic TEXT DEFAULT NULL,
    idempotency_key TEXT DEFAULT NULL
) RETURNS VOID AS $$
DECLARE
    at_ms BIGINT := floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
    dest TEXT := send_message.destination_id;
    idem TEXT := send_message.idempotency_key;
BEGIN
    IF dest IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'send_message: destination_id must be a non-empty string';
    END IF;
    PERFORM check_text_argument('send_message: destination_id', dest, TRUE);
    PERFORM check_text_argument('send_message: topic', NULLIF(send_message.topic, ''), TRUE);
    PERFORM check_text_argument('send_message: idempotency_key', idem, TRUE);
    -- A repeated idempotency key for the same destination is a no-op.
    INSERT INTO notifications (destination_id, topic, message, idempotency_key, created_at)
    SELECT dest, COALESCE(send_message.topic, ''), convert_to(COALESCE(send_message.message::TEXT, 'null'), 'UTF8'),
        idem, at_ms
    WHERE EXISTS (SELECT 1 FROM workflow_status w WHERE w.workflow_id = dest)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM workflow_status w WHERE w.workflow_id = dest) THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('send_message: workflow %L does not exist', dest);
    END IF;
END $$ LANGUAGE plpgsql
SET search_path FROM CURRENT;

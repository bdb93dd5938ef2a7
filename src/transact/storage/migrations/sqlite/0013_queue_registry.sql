-- The queue registry: each queue's limits, shared by every process and client of this database.
-- A dispatcher caches these rows and re-reads them when told (a local change, or another
-- process's commit noticed through PRAGMA data_version) and on its slow poll. NULL: no limit.
-- app_version: the application version that last wrote the limits (update_if_latest_version).
CREATE TABLE queues (
    queue_name          TEXT PRIMARY KEY,
    concurrency         INTEGER,
    worker_concurrency  INTEGER,
    rate_limit          INTEGER,
    rate_period_ms      BIGINT,
    priority_enabled    INTEGER NOT NULL DEFAULT 0,
    partitioned         INTEGER NOT NULL DEFAULT 0,
    poll_ms             BIGINT,
    app_version         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

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

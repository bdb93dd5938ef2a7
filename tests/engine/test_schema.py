"""``dbos_system_schema``: the Postgres schema holding the system tables, honoured by the library,
DBOSClient, the CLI and the migrations. Postgres only, but for the SQLite rule: SQLite has no
schemas, so a schema given with a SQLite URL is ignored with a warning."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import fresh_postgres
from transact import DBOS, DBOSClient
from transact.errors import ConfigError

TRANSACT = Path(sys.executable).parent / "transact"
SCHEMAS = ("mgmt_app_a", "mgmt_app_b", "mgmt_app_c")


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    def drop() -> None:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            for schema in SCHEMAS:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    drop()
    fresh_postgres(pg_database)  # the default schema starts empty too
    yield pg_database
    drop()


def launch(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config=config)

    @DBOS.workflow(name="greet")
    def greet(who: str) -> str:
        return f"hello {who}"

    DBOS.launch()
    assert greet(config["name"]) == f"hello {config['name']}"


def cli(*args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "TRANSACT_SYSTEM_DATABASE_URL"}
    proc = subprocess.run([str(TRANSACT), *args], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_applications_in_different_schemas_of_one_database_do_not_see_each_other(pg_url: str) -> None:
    try:
        for schema in SCHEMAS:
            launch({"name": schema, "system_database_url": pg_url, "dbos_system_schema": schema})
            listed = DBOS.list_workflows()
            assert [(w.name, w.output) for w in listed] == [("greet", f"hello {schema}")]
            assert [v["version_name"] for v in DBOS.list_application_versions()] != []
    finally:
        DBOS.destroy(destroy_registry=True)
    with psycopg.connect(pg_url) as conn:
        found = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'workflow_status'"
            " AND table_schema = ANY(%s) ORDER BY 1",
            (list(SCHEMAS),),
        ).fetchall()
    assert [r[0] for r in found] == list(SCHEMAS)  # migrations created each schema and its tables
    for schema in SCHEMAS:
        with DBOSClient(pg_url, dbos_system_schema=schema) as client:
            assert [w.output for w in client.list_workflows()] == [f"hello {schema}"]
        rows = cli("--schema", schema, "workflow", "list", "--db", pg_url, "--json")
        assert [(r["name"], r["status"]) for r in rows] == [("greet", "SUCCESS")]
    with DBOSClient(pg_url) as client:  # the default schema holds neither
        assert client.list_workflows() == []


def test_cli_export_import_and_copy_honour_the_schema(pg_url: str, tmp_path: Path) -> None:
    try:
        launch({"name": "mgmt_app_a", "system_database_url": pg_url, "dbos_system_schema": "mgmt_app_a"})
        (source_id,) = [w.workflow_id for w in DBOS.list_workflows()]
    finally:
        DBOS.destroy(destroy_registry=True)
    exported = tmp_path / "run.json"
    subprocess.run(
        [str(TRANSACT), "--schema", "mgmt_app_a", "workflow", "export", source_id, "-o", str(exported), "--db", pg_url],
        check=True,
        timeout=60,
        capture_output=True,
    )
    imported = cli("--schema", "mgmt_app_b", "workflow", "import", str(exported), "--db", pg_url, "--json")
    assert imported["workflow_id"] == source_id and imported["status"] == "SUCCESS"
    with DBOSClient(pg_url, dbos_system_schema="mgmt_app_b") as client:
        assert [w.output for w in client.list_workflows()] == ["hello mgmt_app_a"]

    lite = f"sqlite:///{tmp_path / 'lite.sqlite'}"
    try:
        launch({"name": "lite", "system_database_url": lite})
    finally:
        DBOS.destroy(destroy_registry=True)
    cli("--schema", "mgmt_app_c", "copy", "--from", lite, "--to", pg_url, "--json")
    with DBOSClient(pg_url, dbos_system_schema="mgmt_app_c") as client:
        assert [w.output for w in client.list_workflows()] == ["hello lite"]
    with DBOSClient(pg_url) as client:  # the default schema received nothing
        assert client.list_workflows() == []


def test_dbos_names_the_default_schema_and_bad_names_are_refused(pg_url: str) -> None:
    with DBOSClient(pg_url, dbos_system_schema="dbos") as client:  # DBOS's default name: the default schema
        assert client.system_schema is None
    for bad in ("Upper", "1st", "a-b", "x" * 64, 7):
        with pytest.raises(ConfigError, match="dbos_system_schema"):
            DBOS(config={"name": "bad", "system_database_url": pg_url, "dbos_system_schema": bad})
        with pytest.raises(ConfigError, match="dbos_system_schema"):
            DBOSClient(pg_url, dbos_system_schema=bad)  # type: ignore[arg-type]
    DBOS.destroy(destroy_registry=True)


def test_sqlite_ignores_a_schema_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    caplog.set_level(logging.WARNING, logger="transact")
    try:
        launch({"name": "lite", "system_database_url": url, "dbos_system_schema": "mgmt_app_a"})
        assert "SQLite has no schemas" in caplog.text
    finally:
        DBOS.destroy(destroy_registry=True)
    caplog.clear()
    with DBOSClient(url, dbos_system_schema="mgmt_app_a") as client:
        assert [w.name for w in client.list_workflows()] == ["greet"]
    assert "SQLite has no schemas" in caplog.text


def test_attribute_triggers_work_from_a_connection_without_the_schema(pg_url: str) -> None:
    """The attribute listing table is kept by a trigger whose function carries its schema: a write
    from a connection whose search_path lacks it (the outbox writes through the caller's) works."""
    with DBOSClient(pg_url, dbos_system_schema="mgmt_app_a") as client:
        assert client.list_workflows() == []  # migrated
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO mgmt_app_a.workflow_status (workflow_id, status, name, created_at, updated_at, attributes)"
            """ VALUES ('raw', 'SUCCESS', 'raw', 1, 1, '{"team": "a"}')"""
        )
        conn.execute("""UPDATE mgmt_app_a.workflow_status SET attributes = '{"team": "b"}'""")
    with DBOSClient(pg_url, dbos_system_schema="mgmt_app_a") as client:
        assert [w.workflow_id for w in client.list_workflows(attributes={"team": "b"})] == ["raw"]
        assert client.list_workflows(attributes={"team": "a"}) == []

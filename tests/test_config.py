"""DBOSConfig keys: every key the DBOS docs list is accepted; applied keys take effect, keys with
no transact feature warn once, ``serializer`` is checked, unknown keys fail naming the nearest."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from tests.conftest import migrate_up_to, scratch_pg_database
from transact import DBOS, SetWorkflowID, _config
from transact._config import DBOSConfig, load_settings
from transact.errors import ConfigError
from transact.storage import open_store

# The keys the DBOS docs list for DBOSConfig (Python); the 1.x-only ones are still found in ported code.
DOCUMENTED = [
    "name",
    "system_database_url",
    "application_database_url",  # 2.x (3.x replaces the application database with datasources)
    "database_url",  # 1.x, deprecated synonym of application_database_url
    "sys_db_name",  # 1.x, removed in 2.0
    "sys_db_pool_size",
    "db_engine_kwargs",
    "system_database_engine",
    "dbos_system_schema",
    "run_migrations",
    "use_listen_notify",
    "notification_listener_polling_interval_sec",
    "scheduler_polling_interval_sec",
    "application_version",
    "executor_id",
    "enable_patching",
    "max_executor_threads",
    "log_level",
    "console_log_level",
    "otlp_log_level",
    "enable_otlp",
    "otlp_traces_endpoints",
    "otlp_logs_endpoints",
    "otlp_attributes",
    "run_admin_server",
    "admin_port",
    "conductor_key",
    "conductor_url",
    "serializer",
]

# A value of each no-effect key that asks for something transact does not do.
ASKING = {
    "run_admin_server": True,
    "admin_port": 3101,
    "conductor_key": "key-123",
    "conductor_url": "wss://conductor.example",
    "use_listen_notify": False,
    "notification_listener_polling_interval_sec": 0.5,
    "sys_db_name": "orders_sys",
}


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees a process that has warned about nothing yet; the transact logger's level
    (set by log_level keys) is put back afterwards."""
    monkeypatch.setattr(_config, "_warned", set())
    logger = logging.getLogger("transact")
    level = logger.level
    DBOS.destroy(destroy_registry=True)
    yield
    DBOS.destroy(destroy_registry=True)
    logger.setLevel(level)


@contextmanager
def launched(config: dict[str, Any] | DBOSConfig) -> Iterator[type[DBOS]]:
    DBOS.destroy(destroy_registry=True)
    DBOS(config=config)  # type: ignore[arg-type]  # a DBOSConfig until DBOS(config=) takes a Mapping
    try:
        DBOS.launch()
        yield DBOS
    finally:
        DBOS.destroy(destroy_registry=True)


def warnings_about(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and repr(key) in r.getMessage()]


def test_every_documented_key_is_known_and_typed() -> None:
    assert set(DOCUMENTED) <= _config.KNOWN_KEYS
    assert set(DOCUMENTED) <= set(DBOSConfig.__annotations__)
    assert set(ASKING) == set(_config._NO_EFFECT)


def test_a_full_dbos_style_config_launches(config: dict[str, Any], tmp_path: Path) -> None:
    full: DBOSConfig = {
        "name": "orders-service",
        "system_database_url": config["system_database_url"],
        "application_database_url": config["system_database_url"],
        "sys_db_pool_size": 6,
        "db_engine_kwargs": {"pool_size": 6, "pool_pre_ping": True},
        "system_database_engine": None,
        "dbos_system_schema": "dbos",
        "run_migrations": True,
        "use_listen_notify": True,
        "notification_listener_polling_interval_sec": 1.0,
        "scheduler_polling_interval_sec": 15.0,
        "application_version": "2024.06.1",
        "executor_id": "orders-a",
        "enable_patching": False,
        "max_executor_threads": 16,
        "log_level": "INFO",
        "console_log_level": "INFO",
        "otlp_log_level": "INFO",
        "enable_otlp": False,
        "otlp_traces_endpoints": ["http://collector:4318/v1/traces"],
        "otlp_logs_endpoints": ["http://collector:4318/v1/logs"],
        "otlp_attributes": {"deployment": "staging"},
        "run_admin_server": False,
        "admin_port": 3101,
        "conductor_key": None,
        "conductor_url": None,
        "serializer": None,
        "shutdown_timeout_seconds": 2,
    }

    @DBOS.workflow()
    def place(order: str) -> str:
        return f"placed {order}"

    with launched(full) as dbos:
        with SetWorkflowID("full-config"):
            assert place("o-1") == "placed o-1"
        status = dbos.retrieve_workflow("full-config").get_status()
        assert (status.executor_id, status.app_version) == ("orders-a", "2024.06.1")


def test_applied_keys_take_effect(config: dict[str, Any], backend: str) -> None:
    applied = {
        **config,
        "executor_id": "exec-applied",
        "application_version": "v-applied",
        "sys_db_pool_size": 3,
        "max_executor_threads": 6,
        "log_level": "INFO",
        "console_log_level": "WARNING",  # the stricter one is what a console would show
        "scheduler_polling_interval_sec": 7,
    }

    @DBOS.workflow()
    def who() -> str:
        return str(DBOS.workflow_id)

    with launched(applied) as dbos:
        rt = dbos._rt()
        assert rt.executor_id == "exec-applied" and rt.app_version == "v-applied"
        assert rt.settings.pool_size == 3
        if backend == "postgres":
            assert rt.store._pool.max_size == 3  # type: ignore[attr-defined]
        assert rt.workflow_pool._max_workers == 6
        assert logging.getLogger("transact").level == logging.WARNING
        assert rt.scheduler is not None and rt.scheduler.poll_s == 7.0
        handle = dbos.start_workflow(who)
        handle.get_result()
        status = handle.get_status()
        assert (status.executor_id, status.app_version) == ("exec-applied", "v-applied")


def test_synonyms_apply_and_must_agree(tmp_path: Path) -> None:
    app = f"sqlite:///{tmp_path / 'app.sqlite'}"
    settings = load_settings({"name": "a", "database_url": app, "app_version": "1", "max_workflow_threads": 4})
    assert (settings.application_database_url, settings.app_version, settings.max_workflow_threads) == (app, "1", 4)
    same = load_settings({"name": "a", "application_version": "1", "app_version": "1"})
    assert same.app_version == "1"
    for first, second in [
        ({"app_version": "1"}, {"application_version": "2"}),
        ({"max_workflow_threads": 4}, {"max_executor_threads": 8}),
        ({"system_database_pool_size": 4}, {"sys_db_pool_size": 8}),
        ({"database_url": app}, {"application_database_url": f"sqlite:///{tmp_path / 'other.sqlite'}"}),
    ]:
        with pytest.raises(ConfigError, match="name the same setting"):
            load_settings({"name": "a", **first, **second})


def test_dbos_environment_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_config.ENV_EXECUTOR_ID, raising=False)
    monkeypatch.delenv(_config.ENV_APP_VERSION, raising=False)
    monkeypatch.setenv("DBOS__VMID", "vm-7")
    monkeypatch.setenv("DBOS__APPVERSION", "release-7")
    settings = load_settings({"name": "a"})
    assert (settings.executor_id, settings.executor_id_fixed, settings.app_version) == ("vm-7", True, "release-7")


def test_db_engine_kwargs_pool_size_applies_unless_sys_db_pool_size_is_set() -> None:
    assert load_settings({"name": "a", "db_engine_kwargs": {"pool_size": 5}}).pool_size == 5
    assert load_settings({"name": "a", "db_engine_kwargs": {"pool_size": 5}, "sys_db_pool_size": 2}).pool_size == 2
    with pytest.raises(ConfigError, match="sys_db_pool_size"):
        load_settings({"name": "a", "sys_db_pool_size": 0})


@pytest.mark.parametrize("key", sorted(ASKING))
def test_each_no_effect_key_warns_once_naming_it(key: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="transact.config"):
        load_settings({"name": "a", key: ASKING[key]})
        load_settings({"name": "a", key: ASKING[key]})
    found = warnings_about(caplog, key)
    assert len(found) == 1 and "no effect" in found[0]


def test_log_level_quiets_the_config_notes_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root lets everything through: only transact's level filters
    load_settings({"name": "a", "log_level": "ERROR", "run_admin_server": True})
    assert warnings_about(caplog, "run_admin_server") == []
    load_settings({"name": "a", "log_level": "WARNING", "admin_port": 3101})
    assert len(warnings_about(caplog, "admin_port")) == 1


def test_values_that_ask_for_nothing_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    quiet = {
        "run_admin_server": False,
        "enable_otlp": False,
        "otlp_traces_endpoints": [],
        "use_listen_notify": True,
        "enable_patching": False,
        "conductor_key": None,
        "dbos_system_schema": "transact",
    }
    with caplog.at_level(logging.WARNING, logger="transact.config"):
        load_settings({"name": "a", **quiet})
    assert not caplog.records


def test_a_no_effect_key_warns_once_per_process(config: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="transact.config"):
        for _ in range(2):
            with launched({**config, "run_admin_server": True, "admin_port": 3101}):
                pass
    assert len(warnings_about(caplog, "run_admin_server")) == 1
    assert len(warnings_about(caplog, "admin_port")) == 1


def test_a_refused_config_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="transact.config"), pytest.raises(ConfigError):
        load_settings({"name": "a", "enable_otlp": True, "sys_db_pool_size": -1})
    assert not caplog.records


class JsonSerializer:
    def name(self) -> str:
        return "json"

    def serialize(self, data: Any) -> str:
        return repr(data)

    def deserialize(self, text: str) -> Any:
        return text


def test_a_serializer_without_its_methods_is_refused_and_nothing_is_written(
    config: dict[str, Any], backend: str
) -> None:
    with pytest.raises(ConfigError, match=r"'serializer' must be a serializer .*\(no serialize\(\)\)"):
        DBOS(config={**config, "serializer": object()})
    url = config["system_database_url"]
    if backend == "sqlite":
        assert not os.path.exists(url[len("sqlite:///") :])
    else:
        store = open_store(url)
        try:
            with store.connect_once() as conn:  # type: ignore[attr-defined]
                assert conn.execute("SELECT count(*) FROM transact.workflow_status").fetchone()[0] == 0
        finally:
            store.close()


def test_dbos_default_serializer_passed_explicitly_is_accepted() -> None:
    class PickleSerializer(JsonSerializer):
        def name(self) -> str:
            return "py_pickle"

    assert load_settings({"name": "a", "serializer": PickleSerializer()}).name == "a"
    assert load_settings({"name": "a", "serializer": JsonSerializer()}).name == "a"  # custom ones too


def test_an_unknown_key_names_the_nearest_known_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'max_executor_thread'.*'max_executor_threads'"):
        DBOS(config={"name": "a", "max_executor_thread": 4})
    with pytest.raises(ConfigError, match=r"unknown config key 'sys_db_pool'.*'sys_db_pool_size'"):
        load_settings({"name": "a", "sys_db_pool": 4})
    with pytest.raises(ConfigError, match=r"unknown config key 'zzz'; known keys are: .*system_database_url"):
        load_settings({"name": "a", "zzz": 1})


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no Transact tables: a new SQLite path, or a new Postgres database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
    else:
        yield from scratch_pg_database("transact_cfg_empty")


def test_run_migrations_false_on_an_empty_database_fails_naming_the_fix(empty_url: str) -> None:
    DBOS(config={"name": "a", "system_database_url": empty_url, "run_migrations": False})
    with pytest.raises(ConfigError, match=r"run_migrations is False.*no Transact tables.*transact migrate"):
        DBOS.launch()
    DBOS.destroy(destroy_registry=True)
    store = open_store(empty_url)
    try:
        assert store.schema_version() == 0  # nothing was created
    finally:
        store.close()


def test_run_migrations_false_on_an_old_schema_names_both_versions(empty_url: str) -> None:
    migrate_up_to(empty_url, 1)
    DBOS(config={"name": "a", "system_database_url": empty_url, "run_migrations": False})
    with pytest.raises(ConfigError, match=r"schema version 1, this transact needs version \d+.*transact migrate"):
        DBOS.launch()


def test_run_migrations_false_on_a_migrated_database_launches(config: dict[str, Any]) -> None:
    store = open_store(config["system_database_url"])
    store.migrate()
    store.close()

    @DBOS.workflow()
    def ping() -> str:
        return "pong"

    with launched({**config, "run_migrations": False}):
        assert ping() == "pong"


def test_run_migrations_false_leaves_the_application_database_alone(config: dict[str, Any], empty_url: str) -> None:
    store = open_store(config["system_database_url"])
    store.migrate()
    store.close()
    off = {**config, "application_database_url": empty_url, "run_migrations": False}
    DBOS(config=off)
    with pytest.raises(ConfigError, match=r"run_migrations is False and the application database .* no table"):
        DBOS.launch()
    DBOS.destroy(destroy_registry=True)
    with launched({**off, "run_migrations": True}):
        pass  # creates the outcome table
    with launched(off):
        pass  # now it only checks that the table is there


def test_system_database_engine_gives_its_url(
    config: dict[str, Any], backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = config["system_database_url"]
    if backend == "postgres":
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sqlalchemy.create_engine(url)
    cfg = {k: v for k, v in config.items() if k != "system_database_url"}
    try:
        with (
            caplog.at_level(logging.WARNING, logger="transact.config"),
            launched({**cfg, "system_database_engine": engine}) as dbos,
        ):
            assert dbos._rt().settings.system_database_url == url
        assert len(warnings_about(caplog, "system_database_engine")) == 1
    finally:
        engine.dispose()


def test_database_url_alone_warns_where_workflows_go(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="transact.config"):
        settings = load_settings({"name": "a", "database_url": "postgresql://app@db.internal/orders"})
    assert settings.application_database_url == "postgresql://app@db.internal/orders"
    assert settings.system_database_url.startswith("sqlite:///")
    [message] = warnings_about(caplog, "database_url")
    assert "system_database_url" in message

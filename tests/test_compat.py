"""Code written for DBOS runs with only the import changed: the client's enqueue options (methods
named by class and config name, the user and roles recorded, the duplication policy), the
``EnqueueOptions`` and ``WorkflowInputs`` names, ``DBOS(conductor_...)``, serializers without
``name()``, annotations that resolve at run time, ``DBOS_SYSTEM_DATABASE_URL``, ``transact._error``
and DBOS's parameter names. Each on SQLite and Postgres where a database is involved."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import (
    DBOS,
    DBOSClient,
    DBOSConfiguredInstance,
    EnqueueOptions,
    Queue,
    QueueDeduplicatedError,
    Serializer,
    SetWorkflowID,
    WorkflowInputs,
    WorkflowStatus,
    _config,
)
from transact.engine import serialization
from transact.engine.registry import REGISTRY
from transact.errors import ConfigError
from transact.storage import Store
from transact.storage.rows import WorkflowRow

T = 20.0  # seconds for anything that should happen at once


@pytest.fixture
def client(dbos: type[DBOS], db_url: str) -> Iterator[DBOSClient]:
    """A client on the launched application's database: the application is the worker."""
    with DBOSClient(db_url) as c:
        yield c


def ledger_app() -> None:
    """Method workflows as a client names them: by the bare method name plus the class name (and
    the config name of a configured instance)."""
    Queue("compat-q")

    @DBOS.dbos_class(class_name="Ledger")
    class Ledger(DBOSConfiguredInstance):
        # Named as transact names a module-level class's methods by default: "Class.method".
        @DBOS.workflow(name="Ledger.post")
        def post(self, amount: int, memo: str = "") -> str:
            return f"{self.config_name}:{amount}:{memo}:{DBOS.authenticated_user}:{DBOS.authenticated_roles}"

        @classmethod
        @DBOS.workflow(name="Ledger.kind")
        def kind(cls, n: int) -> str:
            return f"{cls.__name__}:{n}"

    @DBOS.dbos_class(class_name="Renamed")
    class Local(DBOSConfiguredInstance):
        # Registered under its qualified name; the class under its @DBOS.dbos_class name.
        @DBOS.workflow()
        def run(self, x: int) -> str:
            return f"{self.config_name}/{x}"

    Ledger("eu")
    Ledger("us")
    Local("l1")


def test_client_enqueues_methods_by_class_and_config_name(client: DBOSClient) -> None:
    ledger_app()
    on_ledger: EnqueueOptions = {"workflow_name": "post", "queue_name": "compat-q", "workflow_class_name": "Ledger"}
    auth: EnqueueOptions = {
        **on_ledger,
        "workflow_config_name": "eu",
        "authenticated_user": "ann",
        "authenticated_roles": ["admin", "ops"],
        "workflow_id": "post-eu",
    }
    handles = [
        client.enqueue(auth, 5, memo="m"),
        client.enqueue({**on_ledger, "workflow_config_name": "us"}, 7),  # no auth: none recorded
        client.enqueue({**on_ledger, "workflow_name": "kind"}, 3),  # a class method: no config name
        client.enqueue({**on_ledger, "workflow_name": "Ledger.post", "workflow_config_name": "us"}, 8),
        client.enqueue(
            {
                "workflow_name": "run",
                "queue_name": "compat-q",
                "workflow_class_name": "Renamed",
                "workflow_config_name": "l1",
            },
            9,
        ),
    ]
    assert [h.get_result(timeout=T) for h in handles] == [
        "eu:5:m:ann:['admin', 'ops']",
        "us:7::None:None",
        "Ledger:3",
        "us:8::None:None",
        "l1/9",
    ]
    async_handle = asyncio.run(client.enqueue_async({**auth, "workflow_id": "post-eu-async"}, 6))
    assert asyncio.run(async_handle.get_result(timeout=T)) == "eu:6::ann:['admin', 'ops']"

    # The row keeps what the client gave; the user and roles show wherever statuses are read.
    def who(s: WorkflowStatus | None) -> tuple[Any, ...]:
        assert s is not None
        return (s.name, s.class_name, s.config_name, s.authenticated_user, s.authenticated_roles)

    expected = ("post", "Ledger", "eu", "ann", ["admin", "ops"])
    assert who(client.get_workflow_status("post-eu")) == expected
    assert who(DBOS.get_workflow_status("post-eu")) == expected
    assert who(asyncio.run(asyncio.run(client.retrieve_workflow_async("post-eu")).get_status())) == expected
    assert [who(s) for s in client.list_workflows(user="ann")] == [expected] * 2
    assert [who(s) for s in DBOS.list_workflows(user="ann")] == [expected] * 2
    assert [s.workflow_id for s in asyncio.run(client.list_workflows_async(user="ann"))] == ["post-eu", "post-eu-async"]
    assert who(client.get_workflow_status(handles[1].workflow_id))[3:] == (None, None)


def test_recovery_adopts_a_client_enqueued_method_by_its_bare_name(config: dict[str, Any], store: Store) -> None:
    """A method row a client enqueued, left PENDING by a worker that died, is adopted by name."""
    inputs = serialization.dumps_inputs(None, (4,), {"memo": "r"}, workflow="post")
    store.workflow_insert(
        WorkflowRow(
            workflow_id="orphan-post",
            status="PENDING",
            name="post",
            class_name="Ledger",
            config_name="eu",
            inputs=inputs,
            executor_id="dead-executor",
            created_at=1,
            updated_at=1,
            started_at=1,
        )
    )
    DBOS.destroy(destroy_registry=True)
    try:
        DBOS(config=config)
        ledger_app()
        DBOS.launch()
        assert DBOS.retrieve_workflow("orphan-post").get_result(timeout=T) == "eu:4:r:None:None"
        status = DBOS.get_workflow_status("orphan-post")
        assert status is not None and status.executor_id == DBOS._rt().executor_id
    finally:
        DBOS.destroy(destroy_registry=True)


def test_client_duplication_policy(client: DBOSClient) -> None:
    ledger_app()
    held: EnqueueOptions = {
        "workflow_name": "kind",
        "workflow_class_name": "Ledger",
        "queue_name": "compat-q",
        "deduplication_id": "d1",
        "delay_seconds": 600,  # holds the deduplication id for the whole test
    }
    first = client.enqueue(held, 1)
    for key in ("duplication_policy", "deduplication_policy"):
        for spelling in ("return_existing", "return-existing"):
            again = client.enqueue({**held, key: spelling}, 2)
            assert again.workflow_id == first.workflow_id
    with pytest.raises(QueueDeduplicatedError, match="'d1'"):
        client.enqueue({**held, "duplication_policy": "reject"}, 3)
    with pytest.raises(QueueDeduplicatedError, match="'d1'"):
        client.enqueue(held, 3)  # "reject" is the default
    assert [s.workflow_id for s in client.list_workflows()] == [first.workflow_id]


def test_client_enqueue_refuses_bad_new_options_naming_them(client: DBOSClient) -> None:
    base: dict[str, Any] = {"workflow_name": "post", "queue_name": "compat-q"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"workflow_class_name": 5}, "'workflow_class_name' must be a non-empty string"),
        ({"workflow_class_name": "Ledger", "workflow_config_name": ["eu"]}, "'workflow_config_name' must be"),
        ({"workflow_config_name": "eu"}, "'workflow_config_name' needs 'workflow_class_name'"),
        ({"authenticated_user": 7}, "'authenticated_user' must be a non-empty string"),
        ({"authenticated_roles": "admin"}, "'authenticated_roles' must be a list of non-empty role names"),
        ({"authenticated_roles": ["ok", 3]}, "'authenticated_roles' must be a list of non-empty role names"),
        ({"duplication_policy": "maybe"}, "'duplication_policy' must be one of 'reject', 'return_existing'"),
        ({"deduplication_policy": 1}, "'deduplication_policy' must be one of"),
        ({"duplication_policy": "reject", "deduplication_policy": "return_existing"}, "disagree"),
        ({"max_recovery_attempts": 3}, "'max_recovery_attempts' is not supported"),
    ]
    for extra, phrase in cases:
        with pytest.raises(ConfigError) as refused:
            client.enqueue({**base, **extra}, 1)
        assert phrase in str(refused.value), (extra, str(refused.value))
        with pytest.raises(ConfigError, match=re.escape(phrase)):
            asyncio.run(client.enqueue_async({**base, **extra}, 1))
    assert client.list_workflows() == []  # nothing was written


def test_workflow_inputs_read_as_a_mapping_and_as_a_pair(dbos: type[DBOS], client: DBOSClient) -> None:
    @DBOS.workflow(name="compat_add")
    def add(a: int, b: int = 0) -> int:
        return a + b

    with SetWorkflowID("in-1"):
        assert add(1, b=2) == 3
    statuses = [
        DBOS.get_workflow_status("in-1"),
        asyncio.run(DBOS.get_workflow_status_async("in-1")),
        client.get_workflow_status("in-1"),
        client.retrieve_workflow("in-1").get_status(),
        *DBOS.list_workflows(workflow_ids=["in-1"]),
        *asyncio.run(DBOS.list_workflows_async(workflow_ids=["in-1"])),
        *client.list_workflows(workflow_ids=["in-1"], load_input=True),
        *asyncio.run(client.list_workflows_async(workflow_ids=["in-1"])),
    ]
    assert len(statuses) == 8
    for status in statuses:
        assert status is not None
        inputs = status.input
        assert isinstance(inputs, WorkflowInputs)
        assert (inputs["args"], inputs["kwargs"]) == ((1,), {"b": 2})  # DBOS's WorkflowInputs
        args, kwargs = inputs  # the (args, kwargs) pair transact has always returned
        assert (args, kwargs, inputs[0], inputs[1]) == ((1,), {"b": 2}, (1,), {"b": 2})
        assert inputs == ((1,), {"b": 2}) and dict(inputs) == {"args": (1,), "kwargs": {"b": 2}}
        assert "args" in inputs and inputs.get("missing") is None
        with pytest.raises(KeyError):
            inputs["missing"]
    assert DBOS.list_workflows(workflow_ids=["in-1"], load_input=False)[0].input is None


def test_dbos_accepts_conductor_arguments_with_a_warning(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_config, "_warned", set())
    DBOS.destroy(destroy_registry=True)
    try:
        with caplog.at_level(logging.WARNING, logger="transact.config"):
            DBOS(config=config, conductor_key="key-1", conductor_url="wss://conductor.example")
            DBOS.destroy()
            DBOS(config={**config, "conductor_key": "key-1"}, conductor_key="key-1")
        warned = [r.getMessage() for r in caplog.records if "Conductor" in r.getMessage()]
        assert len(warned) == 2 and all("has no effect in transact" in m for m in warned), warned
        assert any("'conductor_url'" in m for m in warned) and any("'conductor_key'" in m for m in warned)

        @DBOS.workflow(name="compat_noop")
        def noop() -> str:
            return "ok"

        DBOS.launch()
        with SetWorkflowID("after-conductor"):
            assert noop() == "ok"
        status = DBOS.get_workflow_status("after-conductor")
        assert status is not None and status.status == "SUCCESS"
        DBOS.destroy()
        with pytest.raises(ConfigError, match=r"DBOS\(conductor_key=...\) must be a string or None, got 5"):
            DBOS(config=config, conductor_key=5)  # type: ignore[arg-type]
    finally:
        DBOS.destroy(destroy_registry=True)


class B64Json2x(Serializer):
    """A DBOS 2.x serializer: ``serialize`` and ``deserialize`` only."""

    def serialize(self, data: Any) -> str:
        return base64.b64encode(json.dumps(data).encode()).decode()

    def deserialize(self, serialized_data: str) -> Any:
        return json.loads(base64.b64decode(serialized_data))


def test_serializer_without_name_round_trips(config: dict[str, Any]) -> None:
    serializer = B64Json2x()
    assert serializer.name() == "B64Json2x"
    DBOS.destroy(destroy_registry=True)
    try:
        DBOS(config={**config, "serializer": serializer})

        @DBOS.workflow(name="compat_echo")
        def echo(value: Any) -> Any:
            DBOS.set_event("seen", value)
            return {"echo": value}

        DBOS.launch()
        with SetWorkflowID("ser-1"):
            assert echo([1, "two"]) == {"echo": [1, "two"]}
        status = DBOS.get_workflow_status("ser-1")
        assert status is not None and status.input == (([1, "two"],), {}) and status.output == {"echo": [1, "two"]}
        with DBOSClient(config["system_database_url"], serializer=B64Json2x()) as client:
            assert client.get_event("ser-1", "seen", timeout_seconds=1) == [1, "two"]
            assert client.retrieve_workflow("ser-1").get_result(timeout=T) == {"echo": [1, "two"]}
            row = client.store.workflow_get("ser-1")
        # Stored under the default name: values written before a rename of the class still say it.
        assert row is not None and row.output is not None and row.output.startswith(b"\x01B64Json2x\x00")
    finally:
        DBOS.destroy(destroy_registry=True)


def test_list_workflow_annotations_resolve_at_run_time() -> None:
    for fn in (
        DBOS.list_workflows,
        DBOS.list_workflows_async,
        DBOS.list_queued_workflows,
        DBOS.list_queued_workflows_async,
        DBOSClient.list_workflows,
        DBOSClient.list_workflows_async,
        DBOSClient.list_queued_workflows,
        DBOSClient.list_queued_workflows_async,
        DBOSClient.enqueue,
    ):
        hints = typing.get_type_hints(fn)
        assert "return" in hints, fn


def test_dbos_system_database_url_is_the_fallback(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRANSACT_SYSTEM_DATABASE_URL", raising=False)
    monkeypatch.setenv("DBOS_SYSTEM_DATABASE_URL", db_url)
    assert _config.load_settings({"name": "env-app"}).system_database_url == db_url
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    # The config's own URL, and TRANSACT_SYSTEM_DATABASE_URL, come first.
    assert _config.load_settings({"name": "env-app", "system_database_url": other}).system_database_url == other
    monkeypatch.setenv("TRANSACT_SYSTEM_DATABASE_URL", other)
    assert _config.load_settings({"name": "env-app"}).system_database_url == other
    monkeypatch.delenv("TRANSACT_SYSTEM_DATABASE_URL")
    monkeypatch.setenv("DBOS_SYSTEM_DATABASE_URL", "mysql://h/db")
    with pytest.raises(ConfigError, match="environment variable DBOS_SYSTEM_DATABASE_URL must be a database URL"):
        _config.load_settings({"name": "env-app"})

    # A DBOS config with no URL launches on that database; a client without a URL finds it too.
    monkeypatch.setenv("DBOS_SYSTEM_DATABASE_URL", db_url)
    DBOS.destroy(destroy_registry=True)
    try:
        DBOS(config={"name": "env-app", "shutdown_timeout_seconds": 2})

        @DBOS.workflow(name="compat_env")
        def env_wf() -> str:
            return "here"

        DBOS.launch()
        with SetWorkflowID("env-1"):
            assert env_wf() == "here"
        with DBOSClient() as client:
            assert client.system_database_url == db_url
            assert client.retrieve_workflow("env-1").get_result(timeout=T) == "here"
        assert not (tmp_path / "env-app.sqlite").exists()  # the SQLite default was not used
    finally:
        DBOS.destroy(destroy_registry=True)


def test_error_module_path_of_dbos() -> None:
    from transact import _error, errors
    from transact._error import DBOSErrorCode, DBOSException

    assert DBOSException is errors.TransactError and DBOSErrorCode is errors.DBOSErrorCode
    exceptions = [n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, BaseException)]
    assert "DBOSWorkflowConflictIDError" in exceptions  # (the walk finds the error classes)
    for name in exceptions:
        assert getattr(_error, name) is getattr(errors, name)


def test_dbos_parameter_names(dbos: type[DBOS]) -> None:
    """The names DBOS code passes by keyword: ``dbos_step_options`` / ``func`` of ``run_step``,
    ``patch_name`` of the patch calls, ``polling_interval_sec`` of ``get_result``."""

    @DBOS.workflow(name="compat_names")
    def names() -> list[Any]:
        one = DBOS.run_step(dbos_step_options={"name": "one"}, func=lambda: 1)
        return [one, DBOS.patch(patch_name="p1"), DBOS.deprecate_patch(patch_name="p2")]

    @DBOS.workflow(name="compat_names_async")
    async def names_async() -> list[Any]:
        async def two() -> int:
            return 2

        got = await DBOS.run_step_async(dbos_step_options={"name": "two"}, func=two)
        return [got, await DBOS.patch_async(patch_name="p3"), await DBOS.deprecate_patch_async(patch_name="p4")]

    handle = DBOS.start_workflow(names)
    assert handle.get_result(polling_interval_sec=0.1) == [1, True, True]
    assert DBOS.get_result(handle.workflow_id, polling_interval_sec=0.1) == [1, True, True]

    async def run_async() -> list[Any]:
        started = await DBOS.start_workflow_async(names_async)
        return await started.get_result(polling_interval_sec=0.1)  # type: ignore[no-any-return]

    assert asyncio.run(run_async()) == [2, True, True]
    recorded = wait_until(lambda: DBOS.list_workflow_steps(handle.workflow_id))
    assert recorded[0]["function_name"] == "one"


def test_destroy_takes_its_arguments_in_dbos_order(config: dict[str, Any]) -> None:
    """``DBOS.destroy(workflow_completion_timeout_sec, destroy_registry)``, positional as DBOS
    documents it; a bool where the timeout goes is refused (it reads as the other argument)."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config=config)

    @DBOS.workflow(name="compat_destroyed")
    def destroyed() -> int:
        return 1

    DBOS.launch()
    assert destroyed() == 1
    with pytest.raises(ConfigError, match="workflow_completion_timeout_sec must be a number"):
        DBOS.destroy(True)  # type: ignore[arg-type]
    assert "compat_destroyed" in REGISTRY.workflows  # the refused call changed nothing
    DBOS.destroy(0, True)  # stops at once and forgets the registry
    assert "compat_destroyed" not in REGISTRY.workflows

"""Roles and authentication (_facade/auth.py, engine/auth.py): @DBOS.required_roles and
@DBOS.default_required_roles checked at the call before any row is written, DBOSContextSetAuth,
the auth recorded on the workflow's status, restored on recovery and inherited by children."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import migrate_up_to, scratch_pg_database, wait_until
from transact import (
    DBOS,
    ConfigError,
    DBOSContextEnsure,
    DBOSContextSetAuth,
    DBOSNotAuthorizedError,
    Queue,
    SetWorkflowID,
)
from transact.storage import open_store
from transact.storage.rows import WorkflowRow


def who() -> tuple[str | None, list[str] | None, str | None]:
    return DBOS.authenticated_user, DBOS.authenticated_roles, DBOS.assumed_role


def recorded(workflow_id: str) -> tuple[str | None, list[str] | None, str | None]:
    status = DBOS.get_workflow_status(workflow_id)
    assert status is not None
    return status.authenticated_user, status.authenticated_roles, status.assumed_role


def test_required_roles_allow_the_listed_roles_only(dbos: type[DBOS]) -> None:
    @DBOS.required_roles(["admin", "user"])
    @DBOS.workflow()
    def guarded(x: int) -> tuple[Any, ...]:
        return (x, *who())

    with pytest.raises(DBOSNotAuthorizedError, match=r"without an authenticated user.*DBOSContextSetAuth"):
        guarded(1)
    with DBOSContextSetAuth("eve", ["guest"]), pytest.raises(DBOSNotAuthorizedError) as denied:
        guarded(2)
    assert "['admin', 'user']" in str(denied.value) and "'eve'" in str(denied.value)
    assert denied.value.status_code == 403
    assert DBOS.list_workflows() == []  # refused before anything was written

    with DBOSContextSetAuth("bob", ["user", "admin"]), SetWorkflowID("ok"):
        # the first of the required roles the user has is the one assumed
        assert guarded(3) == (3, "bob", ["user", "admin"], "admin")
    assert recorded("ok") == ("bob", ["user", "admin"], "admin")
    assert who() == (None, None, None)  # the block is over


def test_steps_and_transactions_are_checked_too(dbos: type[DBOS]) -> None:
    @DBOS.required_roles(["ops"])
    @DBOS.step()
    def restart_server() -> tuple[Any, ...]:
        return who()

    @DBOS.required_roles(["dba"])
    @DBOS.transaction()
    def drop_table() -> None:
        raise AssertionError("must not run")

    @DBOS.workflow()
    def maintenance() -> tuple[Any, ...]:
        inside = who()
        return inside, restart_server()

    with DBOSContextSetAuth("ann", ["ops"]):
        assert restart_server() == ("ann", ["ops"], "ops")  # outside a workflow: plain code, checked
        with SetWorkflowID("m1"):
            assert maintenance() == (("ann", ["ops"], None), ("ann", ["ops"], "ops"))
        with pytest.raises(DBOSNotAuthorizedError, match="drop_table"):
            drop_table()
    with DBOSContextSetAuth("joe", ["dev"]), SetWorkflowID("m2"), pytest.raises(DBOSNotAuthorizedError):
        maintenance()
    assert DBOS.get_workflow_status("m2").status == "ERROR"  # type: ignore[union-attr]
    assert [s["function_name"] for s in DBOS.list_workflow_steps("m1")] == [restart_server.__qualname__]


def test_start_workflow_and_enqueue_check_before_any_row(dbos: type[DBOS]) -> None:
    queue = Queue("auth-q")

    @DBOS.required_roles(["admin"])
    @DBOS.workflow()
    def guarded() -> tuple[Any, ...]:
        return who()

    for start in (
        lambda: DBOS.start_workflow(guarded),
        lambda: queue.enqueue(guarded),
        lambda: asyncio.run(DBOS.start_workflow_async(guarded)),
        lambda: asyncio.run(queue.enqueue_async(guarded)),
    ):
        with DBOSContextSetAuth("eve", ["guest"]), pytest.raises(DBOSNotAuthorizedError):
            start()
    assert DBOS.list_workflows() == []

    with DBOSContextSetAuth("root", ["admin"]):
        started = DBOS.start_workflow(guarded)
        queued = queue.enqueue(guarded)
    # Both run in a fresh context: what they see comes from their row.
    assert started.get_result() == ("root", ["admin"], "admin")
    assert queued.get_result() == ("root", ["admin"], "admin")
    assert recorded(queued.workflow_id) == ("root", ["admin"], "admin")


def test_default_required_roles_on_a_class(dbos: type[DBOS]) -> None:
    @DBOS.dbos_class()
    @DBOS.default_required_roles(["user"])
    class Endpoints:
        @staticmethod
        @DBOS.workflow()
        def user_op() -> tuple[Any, ...]:
            return who()

        @staticmethod
        @DBOS.required_roles(["admin"])
        @DBOS.workflow()
        def admin_op() -> tuple[Any, ...]:
            return who()

        @staticmethod
        @DBOS.required_roles([])
        @DBOS.workflow()
        def open_op() -> str:
            return "open"

        @classmethod
        @DBOS.step()
        def class_step(cls) -> str | None:
            return DBOS.assumed_role

        @staticmethod
        def plain_helper() -> str:
            return "not a DBOS function: never guarded"

    assert Endpoints.open_op() == "open"
    assert Endpoints.plain_helper() == "not a DBOS function: never guarded"
    with pytest.raises(DBOSNotAuthorizedError):
        Endpoints.user_op()
    with DBOSContextSetAuth("ua", ["user"]):
        assert Endpoints.user_op() == ("ua", ["user"], "user")
        assert Endpoints.class_step() == "user"
        with pytest.raises(DBOSNotAuthorizedError, match="admin"):
            Endpoints.admin_op()
        with pytest.raises(DBOSNotAuthorizedError):
            DBOS.start_workflow(Endpoints.admin_op)
    with DBOSContextSetAuth("boss", ["admin"]):
        assert Endpoints.admin_op() == ("boss", ["admin"], "admin")
        with pytest.raises(DBOSNotAuthorizedError):
            Endpoints.user_op()  # admin is not in the class's default roles


def test_children_inherit_the_parents_auth(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def child() -> tuple[Any, ...]:
        return who()

    @DBOS.required_roles(["auditor"])
    @DBOS.workflow()
    def audited_child() -> tuple[Any, ...]:
        return who()

    @DBOS.required_roles(["manager", "auditor"])
    @DBOS.workflow()
    def parent() -> list[tuple[Any, ...]]:
        handle = DBOS.start_workflow(child)  # runs in another thread: auth comes from its row
        return [child(), handle.get_result(), audited_child()]

    with DBOSContextSetAuth("mia", ["auditor", "manager"]), SetWorkflowID("p"):
        results = parent()
    assert results == [
        ("mia", ["auditor", "manager"], "manager"),
        ("mia", ["auditor", "manager"], "manager"),
        ("mia", ["auditor", "manager"], "auditor"),
    ]
    children = DBOS.list_workflows(parent_workflow_id="p")
    assert sorted((s.authenticated_user, s.assumed_role) for s in children) == [
        ("mia", "auditor"),
        ("mia", "manager"),
        ("mia", "manager"),
    ]


def test_a_fork_runs_as_the_original_user_not_the_forker(dbos: type[DBOS]) -> None:
    @DBOS.required_roles(["manager"])
    @DBOS.workflow()
    def guarded() -> tuple[Any, ...]:
        return who()

    with DBOSContextSetAuth("mia", ["manager"]), SetWorkflowID("orig"):
        assert guarded() == ("mia", ["manager"], "manager")
    with DBOSContextSetAuth("ops", ["support"]), SetWorkflowID("forked"):
        handle = DBOS.fork_workflow("orig", start_step=1)
    assert handle.get_result() == ("mia", ["manager"], "manager")
    status = handle.get_status()
    assert (status.authenticated_user, status.assumed_role, status.authenticated_roles) == (
        "mia",
        "manager",
        ["manager"],
    )


def test_auth_is_restored_when_a_workflow_is_recovered(dbos: type[DBOS], config: dict[str, Any]) -> None:
    ran = threading.Event()
    seen: list[tuple[Any, ...]] = []

    @DBOS.required_roles(["admin"])
    @DBOS.workflow(name="auth-recovered")
    def long_job() -> tuple[Any, ...]:
        seen.append(who())
        ran.set()
        DBOS.recv("go", timeout_seconds=60)
        return who()

    with DBOSContextSetAuth("root", ["admin", "user"]), SetWorkflowID("rec"):
        DBOS.start_workflow(long_job)
    assert ran.wait(20)
    DBOS.destroy()  # the process goes away with the workflow PENDING; the code (registry) stays
    DBOS(config=config)
    DBOS.launch()  # recovery runs it again, in a context with no caller auth
    wait_until(lambda: len(seen) == 2, what="the recovered run")
    DBOS.send("rec", "now", topic="go")
    assert DBOS.retrieve_workflow("rec").get_result() == ("root", ["admin", "user"], "admin")
    assert seen == [("root", ["admin", "user"], "admin")] * 2


def test_async_guards(dbos: type[DBOS]) -> None:
    @DBOS.required_roles(["user"])
    @DBOS.step()
    async def async_step() -> str | None:
        return DBOS.assumed_role

    @DBOS.required_roles(["user"])
    @DBOS.workflow()
    async def async_wf() -> tuple[Any, ...]:
        return (*who(), await async_step())

    async def main() -> tuple[Any, ...]:
        with pytest.raises(DBOSNotAuthorizedError):
            await async_wf()
        with DBOSContextSetAuth("al", ["user"]):
            return await async_wf()

    assert asyncio.run(main()) == ("al", ["user"], "user", "user")


def test_context_ensure_and_no_auth(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def plain() -> tuple[Any, ...]:
        return who()

    with DBOSContextEnsure(), SetWorkflowID("plain"):
        assert plain() == (None, None, None)
    assert recorded("plain") == (None, None, None)
    with DBOSContextSetAuth("u", None), SetWorkflowID("user-only"):
        assert plain() == ("u", None, None)  # a user without roles is recorded as such
    assert recorded("user-only") == ("u", None, None)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DBOS.required_roles("admin"), "list of role names"),  # type: ignore[arg-type]
        (lambda: DBOS.required_roles(["admin", ""]), "non-empty strings"),
        (lambda: DBOS.required_roles([3]), "non-empty strings"),  # type: ignore[list-item]
        (lambda: DBOS.default_required_roles(None), "list of role names"),  # type: ignore[arg-type]
        (lambda: DBOS.default_required_roles(["a"])(len), "must decorate a class"),  # type: ignore[arg-type]
        (lambda: DBOS.required_roles(["a"])(42), "must decorate a function"),  # type: ignore[type-var]
        (lambda: DBOSContextSetAuth(7, ["a"]), "user must be a string"),  # type: ignore[arg-type]
        (lambda: DBOSContextSetAuth("u", "admin"), "list of role names"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_a_config_error(dbos: type[DBOS], make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no Transact schema yet (the shared Postgres test database is migrated)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite'}"
    else:
        yield from scratch_pg_database("transact_auth_upgrade")


def test_upgrade_adds_nullable_auth_columns(empty_db_url: str) -> None:
    """A database at version 10 keeps its workflows through the upgrade; they read as unauthenticated."""
    db_url = empty_db_url
    migrate_up_to(db_url, 10)
    store = open_store(db_url)
    try:
        store.write(  # type: ignore[attr-defined]
            lambda tx: tx.run(
                "INSERT INTO workflow_status (workflow_id, status, name, created_at, updated_at) "
                "VALUES ('old', 'SUCCESS', 'wf', 1, 1)"
            ),
            single=True,
        )
        assert store.migrate() >= 11
        old = store.workflow_get("old")
        assert old is not None and (old.authenticated_user, old.assumed_role, old.authenticated_roles) == (
            None,
            None,
            None,
        )
        row = WorkflowRow("new", "PENDING", "wf", authenticated_user="u", assumed_role="r", authenticated_roles='["r"]')
        assert store.workflow_insert(row) == (row, True)
        assert store.workflow_get("new") == row
    finally:
        store.close()

"""DBOS.patch / deprecate_patch: new runs take the patched path and record it, runs recorded under
the old code keep the old path, replays (resume, fork, recovery) answer as the first run did, and a
patch deleted too early fails with an error naming it. Crash/restart across code versions is in
tests/crash/test_patch_crash.py."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import DBOS, SetWorkflowID
from transact.errors import ConfigError, DeterminismError, NotInWorkflowError

T = 20.0


class Code:
    """Two versions of one workflow: ``patched`` decides which one runs."""

    def __init__(self) -> None:
        self.patched = False
        self.ran: list[str] = []

        @DBOS.step(name="patching.foo")
        def foo() -> str:
            self.ran.append("foo")
            return "foo"

        @DBOS.step(name="patching.baz")
        def baz() -> str:
            self.ran.append("baz")
            return "baz"

        @DBOS.step(name="patching.bar")
        def bar() -> str:
            self.ran.append("bar")
            return "bar"

        @DBOS.workflow(name="patching.upgrade")
        def upgrade() -> str:
            first = (baz() if DBOS.patch("use-baz") else foo()) if self.patched else foo()
            return f"{first}+{bar()}"

        self.upgrade = upgrade


def steps(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)]


def test_a_new_run_takes_the_patch_and_records_it(dbos: type[DBOS]) -> None:
    code = Code()
    code.patched = True
    with SetWorkflowID("fresh"):
        assert code.upgrade() == "baz+bar"
    assert steps("fresh") == ["DBOS.patch-use-baz", "patching.baz", "patching.bar"]


def test_a_run_recorded_under_the_old_code_keeps_the_old_path(dbos: type[DBOS]) -> None:
    code = Code()
    with SetWorkflowID("old"):
        assert code.upgrade() == "foo+bar"
    code.patched, code.ran = True, []
    # A fork reusing the old run's first step replays it under the new code: the patch says False.
    with SetWorkflowID("old-forked"):
        handle = DBOS.fork_workflow("old", start_step=2)
    assert handle.get_result() == "foo+bar"
    assert code.ran == ["bar"]  # foo replayed from the old history, baz never ran
    assert steps("old-forked") == ["patching.foo", "patching.bar"]
    # A fork from the start reaches the patch under the new code.
    with SetWorkflowID("old-refork"):
        assert DBOS.fork_workflow("old", start_step=1).get_result() == "baz+bar"


def test_a_patched_run_replays_its_branch_on_fork_and_resume(dbos: type[DBOS]) -> None:
    code = Code()
    code.patched = True
    with SetWorkflowID("patched"):
        assert code.upgrade() == "baz+bar"
    code.ran = []
    with SetWorkflowID("patched-fork"):
        assert DBOS.fork_workflow("patched", start_step=3).get_result() == "baz+bar"
    assert code.ran == ["bar"]  # the marker and baz replayed: the patch answered True again


def test_resume_of_a_cancelled_patched_run_keeps_the_patch(dbos: type[DBOS]) -> None:
    reached, release = threading.Event(), threading.Event()
    ran: list[str] = []

    @DBOS.step(name="patching.new")
    def new() -> str:
        ran.append("new")
        return "new"

    @DBOS.step(name="patching.wait")
    def wait() -> str:
        reached.set()
        assert release.wait(T)
        return "waited"

    @DBOS.step(name="patching.last")
    def last() -> str:
        return "last"

    @DBOS.workflow(name="patching.resumed")
    def resumed() -> str:
        first = new() if DBOS.patch("p") else "old"
        wait()
        return f"{first}+{last()}"

    with SetWorkflowID("to-resume"):
        handle = DBOS.start_workflow(resumed)
    assert reached.wait(T)
    DBOS.cancel_workflow("to-resume")
    release.set()
    wait_until(lambda: handle.get_status().status == "CANCELLED", T, what="cancelled")
    assert DBOS.resume_workflow("to-resume").get_result() == "new+last"
    assert ran == ["new"]
    assert steps("to-resume") == ["DBOS.patch-p", "patching.new", "patching.wait", "patching.last"]


def test_patches_in_loops_and_child_workflows(dbos: type[DBOS]) -> None:
    @DBOS.step(name="patching.item")
    def item(n: int) -> int:
        return n * 10

    @DBOS.workflow(name="patching.child")
    def child(n: int) -> int:
        return item(n) if DBOS.patch("child-patch") else -1

    @DBOS.workflow(name="patching.parent")
    def parent() -> list[int]:
        out = [item(n) for n in range(3) if DBOS.patch("loop-patch")]
        out.append(DBOS.start_workflow(child, 7).get_result())
        return out

    with SetWorkflowID("looped"):
        assert parent() == [0, 10, 20, 70]
    assert steps("looped")[:6] == ["DBOS.patch-loop-patch", "patching.item"] * 3
    assert steps("looped-7") == ["DBOS.patch-child-patch", "patching.item"]
    with SetWorkflowID("looped-again"):
        assert DBOS.fork_workflow("looped", start_step=7).get_result() == [0, 10, 20, 70]


def test_deprecate_patch_records_nothing_on_new_runs(dbos: type[DBOS]) -> None:
    @DBOS.step(name="patching.baz2")
    def baz2() -> str:
        return "baz"

    @DBOS.workflow(name="patching.retired")
    def retired() -> str:
        assert DBOS.deprecate_patch("use-baz") is True
        return baz2()

    with SetWorkflowID("unmarked"):
        assert retired() == "baz"
    assert steps("unmarked") == ["patching.baz2"]  # no marker: the call can be deleted later


def test_deprecate_patch_consumes_an_existing_marker(dbos: type[DBOS]) -> None:
    state = {"stage": "patch"}

    @DBOS.step(name="patching.s")
    def s() -> str:
        return "s"

    @DBOS.workflow(name="patching.staged")
    def staged() -> str:
        if state["stage"] == "patch":
            assert DBOS.patch("x")
        elif state["stage"] == "deprecated":
            assert DBOS.deprecate_patch("x")
        return s()

    with SetWorkflowID("staged"):
        assert staged() == "s"
    state["stage"] = "deprecated"
    with SetWorkflowID("staged-fork"):  # replays the marker and s under the deprecated stage
        assert DBOS.fork_workflow("staged", start_step=3).get_result() == "s"
    state["stage"] = "removed"
    with SetWorkflowID("staged-too-early"):
        handle = DBOS.fork_workflow("staged", start_step=3)
    with pytest.raises(DeterminismError) as info:
        handle.get_result()
    assert "'x'" in str(info.value) and "deprecate_patch" in str(info.value)


def test_async_patch(dbos: type[DBOS]) -> None:
    @DBOS.step(name="patching.astep")
    async def astep() -> str:
        return "a"

    @DBOS.workflow(name="patching.async")
    async def flow() -> str:
        first = await DBOS.patch_async("ap")
        second = await DBOS.deprecate_patch_async("gone")
        return f"{first}-{second}-{await astep()}"

    async def main() -> Any:
        with SetWorkflowID("async-patch"):
            return await flow()

    assert asyncio.run(main()) == "True-True-a"
    assert steps("async-patch") == ["DBOS.patch-ap", "patching.astep"]


def test_patch_outside_a_workflow_body_is_a_clear_error(dbos: type[DBOS]) -> None:
    with pytest.raises(NotInWorkflowError, match="workflow"):
        DBOS.patch("p")

    @DBOS.step(name="patching.in_step")
    def in_step() -> bool:
        return DBOS.patch("p")

    @DBOS.workflow(name="patching.bad")
    def bad() -> bool:
        return in_step()

    with pytest.raises(NotInWorkflowError, match="not in a step"):
        bad()

    @DBOS.workflow(name="patching.badname")
    def bad_name() -> bool:
        return DBOS.patch("")

    with SetWorkflowID("bad-name"), pytest.raises(ConfigError, match=r"DBOS\.patch name"):
        bad_name()


def test_enable_patching_sets_a_shared_version(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "enable_patching": True})
    try:
        DBOS.launch()

        @DBOS.workflow(name="patching.versioned")
        def versioned() -> bool:
            return DBOS.patch("v")

        with SetWorkflowID("versioned"):
            assert versioned() is True
        status = DBOS.get_workflow_status("versioned")
        assert status is not None and status.app_version == "PATCHING_ENABLED"
    finally:
        DBOS.destroy(destroy_registry=True)

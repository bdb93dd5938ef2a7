"""Stream offsets (``DBOS.read_stream_offset``) and sends that reach a workflow's forks
(``DBOS.send_to_forks``), on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.engine.test_comms import replay, steps, unread
from transact import DBOS, SetWorkflowID, WorkflowNotFoundError


def _waiting(wid: str) -> bool:
    return any(name == "DBOS.recv.deadline" for name, _ in steps(wid))


def _writer_workflow() -> Any:
    @DBOS.workflow()
    def writer() -> str:
        DBOS.write_stream("s", "old-0")
        DBOS.write_stream("s", "old-1")
        DBOS.recv("more", 30)
        DBOS.write_stream("s", "new-0")
        DBOS.close_stream("s")
        return "done"

    return writer


# -- read_stream_offset -------------------------------------------------------------------------
def test_offset_before_and_after_writes_and_reading_only_new_values(dbos: type[DBOS]) -> None:
    writer = _writer_workflow()
    with SetWorkflowID("off-w"):
        handle = DBOS.start_workflow(writer)
    wait_until(lambda: _waiting("off-w"), what="writer waiting after two values")
    assert DBOS.read_stream_offset("off-w", "never-written") == 0
    offset = DBOS.read_stream_offset("off-w", "s")
    assert offset == 2
    DBOS.send("off-w", None, "more")
    assert list(DBOS.read_stream("off-w", "s", offset=offset)) == ["new-0"]  # only what came after
    assert handle.get_result() == "done"
    assert DBOS.read_stream_offset("off-w", "s") == 3  # the close marker is not a value
    assert asyncio.run(DBOS.read_stream_offset_async("off-w", "s")) == 3
    assert list(DBOS.read_stream("off-w", "s", offset=3)) == []
    with pytest.raises(WorkflowNotFoundError, match=r"DBOS\.read_stream_offset: no workflow with id 'nobody'"):
        DBOS.read_stream_offset("nobody", "s")


def test_offset_inside_a_workflow_is_recorded_and_replayed(dbos: type[DBOS]) -> None:
    writer = _writer_workflow()
    with SetWorkflowID("rec-w"):
        handle = DBOS.start_workflow(writer)
    wait_until(lambda: _waiting("rec-w"), what="writer waiting after two values")

    @DBOS.workflow()
    def peek(wid: str) -> int:
        return DBOS.read_stream_offset(wid, "s")

    @DBOS.workflow()
    async def peek_async(wid: str) -> int:
        return await DBOS.read_stream_offset_async(wid, "s")

    with SetWorkflowID("peek-1"):
        assert peek("rec-w") == 2
    with SetWorkflowID("peek-2"):
        assert asyncio.run(peek_async("rec-w")) == 2
    DBOS.send("rec-w", None, "more")
    assert handle.get_result() == "done" and DBOS.read_stream_offset("rec-w", "s") == 3
    assert replay("peek-1") == 2 and replay("peek-2") == 2  # the recorded number, not today's
    assert steps("peek-1") == steps("peek-2") == [("DBOS.read_stream_offset", 2)]


# -- send_to_forks ------------------------------------------------------------------------------
def _receiver() -> Any:
    @DBOS.workflow()
    def receiver() -> Any:
        return DBOS.recv("t", 30)

    return receiver


def _fork(source: str, new_id: str) -> str:
    with SetWorkflowID(new_id):
        return DBOS.fork_workflow(source, 1).workflow_id


def test_send_to_forks_reaches_forks_of_forks_and_skips_finished_ones(dbos: type[DBOS]) -> None:
    receiver = _receiver()
    for wid in ("orig", "other"):
        with SetWorkflowID(wid):
            DBOS.start_workflow(receiver)
    fork_1 = _fork("orig", "fork-1")
    fork_1_1 = _fork(fork_1, "fork-1-1")  # a fork of a fork
    fork_2 = _fork("orig", "fork-2")
    wait_until(lambda: _waiting(fork_2), what="fork-2 waiting")
    DBOS.send(fork_2, "own", "t")  # fork-2 finishes before the send below
    assert DBOS.retrieve_workflow(fork_2).get_result() == "own"
    fork_2_1 = _fork(fork_2, "fork-2-1")  # a fork of the finished one still counts
    for wid in ("orig", "other", fork_1, fork_1_1, fork_2_1):
        wait_until(lambda wid=wid: _waiting(wid), what=f"{wid} waiting in recv")

    delivered = DBOS.send_to_forks("orig", "late", "t")

    assert delivered == ["orig", "fork-1", "fork-1-1", "fork-2-1"]  # generation, then creation order
    for wid in delivered:
        assert DBOS.retrieve_workflow(wid).get_result(timeout=20) == "late"
    assert unread(fork_2) == []  # finished: nothing delivered
    assert DBOS.get_workflow_status("other").status == "PENDING"  # not of the family
    assert DBOS.send_to_forks(fork_1, "after") == []  # every one of that family has finished
    assert unread(fork_1) == unread(fork_1_1) == []
    assert asyncio.run(DBOS.send_to_forks_async("other", "done", "t")) == ["other"]
    assert DBOS.retrieve_workflow("other").get_result(timeout=20) == "done"


def test_send_to_forks_unknown_destination_sends_nothing(dbos: type[DBOS]) -> None:
    with pytest.raises(WorkflowNotFoundError, match=r"DBOS\.send_to_forks: no workflow with id 'nobody'"):
        DBOS.send_to_forks("nobody", 1)

    @DBOS.workflow()
    def sender() -> Any:
        try:
            DBOS.send_to_forks("nobody", 1)
        except WorkflowNotFoundError as exc:
            return str(exc)
        return None

    assert "'nobody'" in sender()


def test_send_to_forks_in_a_workflow_is_one_step_sent_once(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def holder() -> None:
        DBOS.recv("hold", 30)  # messages on topic "t" stay unread

    with SetWorkflowID("dest"):
        dest = DBOS.start_workflow(holder)
    fork = _fork("dest", "dest-fork")

    @DBOS.workflow()
    def notifier() -> list[str]:
        return DBOS.send_to_forks("dest", {"n": 1}, "t")

    @DBOS.workflow()
    async def notifier_async() -> list[str]:
        return await DBOS.send_to_forks_async("dest", {"n": 2}, "t")

    with SetWorkflowID("notifier"):
        assert notifier() == ["dest", fork]
    with SetWorkflowID("notifier-async"):
        assert asyncio.run(notifier_async()) == ["dest", fork]
    late_fork = _fork("dest", "dest-late-fork")  # after the sends: replays must not reach it
    assert replay("notifier") == ["dest", fork]
    assert replay("notifier-async") == ["dest", fork]
    assert steps("notifier") == [("DBOS.send_to_forks", ["dest", fork])]
    assert unread("dest") == unread(fork) == [{"n": 1}, {"n": 2}]  # once each, whatever the replays
    assert unread(late_fork) == []
    for wid in ("dest", fork, late_fork):
        DBOS.send(wid, None, "hold")
    assert dest.get_result(timeout=20) is None

"""Stream reading from offsets with deadlines, bulk sends, and the client forms, on both databases."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.engine.test_comms import replay, steps, unread
from transact import DBOS, DBOSClient, SetWorkflowID, WorkflowNotFoundError
from transact.errors import ConfigError


async def collect(values: Any) -> list[Any]:
    return [v async for v in values]


def _writer_workflow() -> Any:
    @DBOS.workflow()
    def writer(n: int, close: bool) -> str:
        for i in range(n):
            DBOS.write_stream("s", i)
        if close:
            DBOS.close_stream("s")
        DBOS.recv("hold", 30)
        return "done"

    return writer


# -- read_stream: offset and timeout ------------------------------------------------------------
def test_read_stream_from_an_offset(dbos: type[DBOS]) -> None:
    writer = _writer_workflow()
    with SetWorkflowID("w-off"):
        handle = DBOS.start_workflow(writer, 5, True)
    assert list(DBOS.read_stream("w-off", "s")) == [0, 1, 2, 3, 4]
    assert list(DBOS.read_stream("w-off", "s", offset=3)) == [3, 4]
    assert list(DBOS.read_stream("w-off", "s", offset=5)) == []  # past the last value: ends at the close
    assert list(DBOS.read_stream("w-off", "s", offset=99)) == []
    assert asyncio.run(collect(DBOS.read_stream_async("w-off", "s", offset=2))) == [2, 3, 4]
    DBOS.send("w-off", None, "hold")
    assert handle.get_result() == "done"


def test_read_stream_timeout_names_the_offset_to_resume_from(dbos: type[DBOS]) -> None:
    writer = _writer_workflow()
    with SetWorkflowID("w-open"):
        handle = DBOS.start_workflow(writer, 3, False)  # never closed while it waits
    wait_until(lambda: len(steps("w-open")) >= 3, what="three values written")
    got: list[Any] = []
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="offset=3"):
        for value in DBOS.read_stream("w-open", "s", timeout_seconds=0.3):
            got.append(value)
    assert got == [0, 1, 2] and 0.25 <= time.monotonic() - started < 5

    async def read_async() -> list[Any]:
        out: list[Any] = []
        with pytest.raises(TimeoutError, match="offset=3"):
            async for value in DBOS.read_stream_async("w-open", "s", offset=1, timeout_seconds=0.2):
                out.append(value)
        return out

    assert asyncio.run(read_async()) == [1, 2]
    DBOS.send("w-open", None, "hold")  # the writer ends: the stream is over
    assert handle.get_result() == "done"
    assert list(DBOS.read_stream("w-open", "s", offset=3, timeout_seconds=5)) == []


def test_read_stream_with_a_timeout_is_woken_by_new_values(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def slow() -> None:
        DBOS.recv("go", 30)
        DBOS.write_stream("s", "late")
        DBOS.close_stream("s")

    handle = DBOS.start_workflow(slow)
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(DBOS.read_stream(handle.workflow_id, "s", timeout_seconds=20)))
    reader.start()
    DBOS.send(handle.workflow_id, None, "go")
    reader.join(20)
    assert not reader.is_alive() and got == ["late"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"offset": -1}, "offset"),
        ({"offset": "3"}, "offset"),
        ({"offset": True}, "offset"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"timeout_seconds": "soon"}, "timeout_seconds"),
    ],
)
def test_read_stream_bad_arguments_fail_at_the_call(dbos: type[DBOS], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=f"DBOS.read_stream: {match}"):
        DBOS.read_stream("w", "s", **kwargs)
    with pytest.raises(ConfigError, match=f"DBOS.read_stream: {match}"):
        DBOS.read_stream_async("w", "s", **kwargs)


# -- send_bulk ----------------------------------------------------------------------------------
def _receivers() -> Any:
    @DBOS.workflow()
    def receiver(n: int, topic: str | None) -> list[Any]:
        return [DBOS.recv(topic, 30) for _ in range(n)]

    return receiver


def test_send_bulk_delivers_every_message_in_order(dbos: type[DBOS]) -> None:
    receiver = _receivers()
    with SetWorkflowID("r-a"):
        a = DBOS.start_workflow(receiver, 3, None)
    with SetWorkflowID("r-b"):
        b = DBOS.start_workflow(receiver, 2, "t")
    DBOS.send_bulk(
        [
            ("r-a", 1),
            {"destination_id": "r-b", "message": "x", "topic": "t"},
            ["r-a", 2, None, "k1"],
            ("r-a", "dup", None, "k1"),  # the same idempotency key: skipped
            {"destination_id": "r-b", "message": {"y": 2}, "topic": "t", "idempotency_key": "k1"},
            ("r-a", 3),
        ]
    )
    assert a.get_result() == [1, 2, 3]
    assert b.get_result() == ["x", {"y": 2}]
    DBOS.send_bulk([])  # nothing to do


def test_send_bulk_is_all_or_nothing(dbos: type[DBOS]) -> None:
    receiver = _receivers()
    with SetWorkflowID("r-1"):
        DBOS.start_workflow(receiver, 1, None)
    with pytest.raises(WorkflowNotFoundError, match=r"'ghost'.*no message was sent"):
        DBOS.send_bulk([("r-1", "a"), ("ghost", "b")])
    assert unread("r-1") == []
    DBOS.send("r-1", "ok")
    assert DBOS.retrieve_workflow("r-1").get_result() == ["ok"]


def test_send_bulk_in_a_workflow_is_one_step_and_replay_does_not_resend(dbos: type[DBOS]) -> None:
    receiver = _receivers()

    @DBOS.workflow()
    def fan_out(ids: list[str]) -> str:
        DBOS.send_bulk([(i, f"hello {i}") for i in ids])
        return "sent"

    with SetWorkflowID("r-x"):
        rx = DBOS.start_workflow(receiver, 2, None)
    with SetWorkflowID("fan-1"):
        assert fan_out(["r-x"]) == "sent"
    assert [name for name, _ in steps("fan-1")] == ["DBOS.send_bulk"]
    assert replay("fan-1") == "sent"  # the recorded step: nothing is sent again
    DBOS.send("r-x", "second")
    assert rx.get_result() == ["hello r-x", "second"]

    async def async_fan() -> None:
        @DBOS.workflow()
        async def fan_async() -> str:
            await DBOS.send_bulk_async([("r-y", 1), ("r-y", 2)])
            return "ok"

        with SetWorkflowID("fan-2"):
            handle = await DBOS.start_workflow_async(fan_async)
        assert await handle.get_result() == "ok"

    with SetWorkflowID("r-y"):
        ry = DBOS.start_workflow(receiver, 2, None)
    asyncio.run(async_fan())
    assert ry.get_result() == [1, 2]
    assert [name for name, _ in steps("fan-2")] == ["DBOS.send_bulk"]


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("r", "messages must be a list"),
        ({"destination_id": "r", "message": 1}, "messages must be a list"),
        ([("r",)], r"messages\[0\] must be a tuple"),
        ([("r", 1, None, None, "extra")], r"messages\[0\] must be a tuple"),
        ([{"destination_id": "r"}], r"messages\[0\] must have keys"),
        ([{"destination_id": "r", "message": 1, "topik": "t"}], r"messages\[0\] must have keys"),
        ([("r", 1), ("", 2)], r"messages\[1\] destination_id"),
        ([("r", 1, 5)], r"messages\[0\] topic"),
    ],
)
def test_send_bulk_bad_input(dbos: type[DBOS], messages: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DBOS.send_bulk(messages)


# -- the client ---------------------------------------------------------------------------------
def test_client_reads_streams_and_sends_bulk(dbos: type[DBOS], db_url: str) -> None:
    writer = _writer_workflow()
    receiver = _receivers()
    with SetWorkflowID("c-w"):
        handle = DBOS.start_workflow(writer, 4, False)
    with SetWorkflowID("c-r"):
        rh = DBOS.start_workflow(receiver, 2, "t")
    with DBOSClient(db_url) as client:
        got: list[Any] = []
        reader = threading.Thread(target=lambda: got.extend(client.read_stream("c-w", "s", offset=1)))
        reader.start()
        wait_until(lambda: got == [1, 2, 3], what="the values written so far")
        with pytest.raises(TimeoutError, match="offset=4"):
            asyncio.run(collect(client.read_stream_async("c-w", "s", offset=2, timeout_seconds=0.2)))
        client.send_bulk([("c-r", "one", "t"), {"destination_id": "c-r", "message": "two", "topic": "t"}])
        asyncio.run(client.send_bulk_async([("c-w", None, "hold")]))  # ends the writer: the reader ends
        reader.join(20)
        assert not reader.is_alive() and got == [1, 2, 3]
        assert rh.get_result() == ["one", "two"] and handle.get_result() == "done"
        assert asyncio.run(collect(client.read_stream_async("c-w", "s"))) == [0, 1, 2, 3]
        with pytest.raises(WorkflowNotFoundError):
            client.send_bulk([("c-r", 1), ("nobody", 2)])
        with pytest.raises(WorkflowNotFoundError):
            list(client.read_stream("nobody", "s"))
        with pytest.raises(ConfigError, match=r"DBOSClient\.read_stream: offset"):
            client.read_stream("c-w", "s", offset=-2)
        with pytest.raises(ConfigError, match=r"DBOSClient\.send_bulk: messages"):
            client.send_bulk("c-r")


def test_client_read_stream_timeout(dbos: type[DBOS], db_url: str) -> None:
    writer = _writer_workflow()
    with SetWorkflowID("c-t"):
        handle = DBOS.start_workflow(writer, 2, False)
    wait_until(lambda: len(steps("c-t")) >= 2, what="two values written")
    with DBOSClient(db_url) as client:
        got: list[Any] = []
        with pytest.raises(TimeoutError, match="offset=2"):
            for value in client.read_stream("c-t", "s", timeout_seconds=0.2):
                got.append(value)
        assert got == [0, 1]

        async def read_async() -> list[Any]:
            out: list[Any] = []
            with pytest.raises(TimeoutError, match="offset=2"):
                async for value in client.read_stream_async("c-t", "s", timeout_seconds=0.2):
                    out.append(value)
            return out

        assert asyncio.run(read_async()) == [0, 1]
    DBOS.send("c-t", None, "hold")
    assert handle.get_result() == "done"

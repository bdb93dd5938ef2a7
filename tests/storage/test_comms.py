"""CommsStore conformance (storage/comms.py), run on both drivers."""

from __future__ import annotations

import pytest

from tests.storage.builders import Hints, step, trips, wf
from transact.storage import NotFound, OwnershipLost, Store
from transact.storage.comms import StreamClosed


def _send(store: Store, message: bytes = b"m", key: str | None = None, dest: str = "dest") -> bool:
    return store.message_send(destination_id=dest, topic="t", message=message, idempotency_key=key, now=1)


def _take(store: Store, fid: int, executor_id: str = "ex-1") -> object:
    return store.message_take_step(step("dest", fid, None), executor_id=executor_id, topic="t", now=2)


def test_send_delivers_once_per_key(store: Store) -> None:
    store.workflow_insert(wf("dest"))
    hints = Hints(store)
    sent, n = trips(store, lambda: _send(store, key="k"))
    assert sent and n == 1 and hints.take() == [("msg", "dest", "t")]
    assert _send(store, key="k") is False and hints.take() == []
    assert _send(store) and _send(store)  # no key: every send counts
    with pytest.raises(NotFound):
        _send(store, dest="nobody")


def test_send_step_commits_the_message_with_the_step(store: Store) -> None:
    store.workflow_insert(wf("dest"))
    store.workflow_insert(wf("sender"))

    def send(fid: int, message: bytes, dest: str = "dest", executor_id: str = "ex-1") -> object:
        return store.message_send_step(
            step("sender", fid),
            executor_id=executor_id,
            destination_id=dest,
            topic="t",
            message=message,
            idempotency_key=None,
            now=1,
        )

    assert send(1, b"first") is None
    earlier = send(1, b"again")  # a replay: the recorded outcome, nothing sent
    assert earlier is not None and earlier.function_id == 1  # type: ignore[attr-defined]
    with pytest.raises(OwnershipLost):
        send(2, b"intruder", executor_id="ex-2")
    with pytest.raises(NotFound):
        send(3, b"lost", dest="nobody")
    assert sorted(store.steps_load("sender")) == [1]  # neither refused send left a step
    taken = _take(store, 1)
    assert taken is not None and taken.output == b"first"  # type: ignore[attr-defined]
    assert _take(store, 2) is None


def test_take_step_receives_each_message_once(store: Store) -> None:
    store.workflow_insert(wf("dest"))
    nothing, n = trips(store, lambda: _take(store, 1))
    assert nothing is None and n == 1 and store.steps_load("dest") == {}
    _send(store, b"one", key="k1")
    _send(store, b"two")
    taken = _take(store, 1)
    assert taken is not None and taken.output == b"one"  # type: ignore[attr-defined]
    assert store.steps_load("dest")[1].output == b"one"
    replay = _take(store, 1)  # recorded earlier: returned, no message taken
    assert replay is not None and replay.output == b"one"  # type: ignore[attr-defined]
    assert _send(store, b"one again", key="k1") is False  # a taken keyed message still deduplicates
    second = _take(store, 2)
    assert second is not None and second.output == b"two"  # type: ignore[attr-defined]
    assert _take(store, 3) is None
    _send(store, b"three")
    with pytest.raises(OwnershipLost):
        _take(store, 3, executor_id="intruder")
    third = _take(store, 3)  # the refused take rolled back: the message is still there
    assert third is not None and third.output == b"three"  # type: ignore[attr-defined]


def test_event_set_and_get(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    missing, n = trips(store, lambda: store.event_get("w1", "k"))
    assert missing is None and n == 1
    hints = Hints(store)
    _, n = trips(store, lambda: store.event_set(workflow_id="w1", key="k", value=b"v1", now=1))
    assert n == 1 and hints.take() == [("event", "w1", "k")]
    store.event_set(workflow_id="w1", key="k", value=b"v2", now=2)
    assert store.event_get("w1", "k") == b"v2"


def test_event_set_step(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    hints = Hints(store)

    def set_event(fid: int, value: bytes, executor_id: str = "ex-1") -> object:
        return store.event_set_step(
            step("w1", fid), executor_id=executor_id, workflow_id="w1", key="k", value=value, now=1
        )

    assert set_event(1, b"v1") is None and hints.take() == [("event", "w1", "k")]
    assert set_event(1, b"replayed") is not None and hints.take() == []
    assert store.event_get("w1", "k") == b"v1"
    with pytest.raises(OwnershipLost):
        set_event(2, b"intruder", executor_id="ex-2")
    assert store.event_get("w1", "k") == b"v1"


def test_stream_append_and_read(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    hints = Hints(store)
    store.stream_append(workflow_id="w1", key="s", value=b"a", closed=False)
    store.stream_append(workflow_id="w1", key="s", value=b"b", closed=False)
    store.stream_append(workflow_id="w1", key="s", value=None, closed=True)
    assert hints.take() == [("stream", "w1", "s")] * 3
    store.stream_append(workflow_id="w1", key="s", value=None, closed=True)  # closing twice is harmless
    with pytest.raises(StreamClosed):
        store.stream_append(workflow_id="w1", key="s", value=b"late", closed=False)
    (status, items), n = trips(store, lambda: store.stream_read("w1", "s", 1, 10))
    assert status == "PENDING" and items == [(1, b"b", False), (2, None, True)] and n == 2
    assert store.stream_read("w1", "s", 0, 1)[1] == [(0, b"a", False)]
    assert store.stream_read("nobody", "s", 0, 10) == (None, [])


def test_stream_append_step(store: Store) -> None:
    store.workflow_insert(wf("w1"))

    def append(fid: int, value: bytes | None, closed: bool, executor_id: str = "ex-1") -> object:
        return store.stream_append_step(
            step("w1", fid), executor_id=executor_id, workflow_id="w1", key="s", value=value, closed=closed
        )

    assert append(1, b"a", False) is None
    assert append(1, b"replayed", False) is not None
    with pytest.raises(OwnershipLost):
        append(2, b"intruder", False, executor_id="ex-2")
    assert append(2, None, True) is None
    with pytest.raises(StreamClosed):
        append(3, b"late", False)
    assert sorted(store.steps_load("w1")) == [1, 2]  # the refused append left no step
    assert store.stream_read("w1", "s", 0, 10)[1] == [(0, b"a", False), (1, None, True)]


def test_a_bulk_send_checks_every_destination_in_one_read(store: Store) -> None:
    # 1,200 destinations, then one unknown: one existence read for all of them (one parameter,
    # whatever the count), and the unknown one refuses the whole send.
    store.admin_insert_synthetic(count=1_200, id_prefix="d-", names=["n"], statuses=["PENDING"], now=1_000)
    messages = [(f"d-{i}", "t", b"m", None) for i in range(1, 1_201)]  # the rows are d-1 .. d-1200

    def sent() -> int:
        row = store.read(lambda tx: tx.one("SELECT count(*) FROM notifications"))  # type: ignore[attr-defined]
        return int(row[0])

    with pytest.raises(NotFound, match="ghost"):
        store.message_send_bulk(messages=[*messages, ("ghost", "t", b"m", None)], now=5)
    assert sent() == 0
    _, n = trips(store, lambda: store.message_send_bulk(messages=messages, now=7))
    assert sent() == 1_200
    # Postgres: BEGIN, the existence read, the batched insert, COMMIT; SQLite counts the two statements
    assert n == (4 if store.dialect == "postgres" else 2)

"""QueueStore conformance (storage/queues.py), run on both drivers."""

from __future__ import annotations

import threading

from tests.storage.builders import Hints, queued, trips, wf
from transact.storage import Store

# Statements a claim under global limits makes: Postgres counts BEGIN, the advisory lock, the
# counts, the claim and COMMIT; SQLite (BEGIN IMMEDIATE, one writer) the counts and the claim.
LIMITED_CLAIM_TRIPS = {"postgres": 5, "sqlite": 2}


def _claim(store: Store, n: int = 10, **limits: object) -> list[str]:
    claim = store.queue_claim(queue_name="q", partition_key=None, executor_id="me", now=100, max_rows=n, **limits)  # type: ignore[arg-type]
    return [r.workflow_id for r in claim.rows]


def test_claim_takes_ready_rows_in_priority_then_age_order(store: Store) -> None:
    store.workflow_insert(queued("old", created_at=1))
    store.workflow_insert(queued("new", created_at=5))
    store.workflow_insert(queued("urgent", created_at=9, priority=-1))
    store.workflow_insert(queued("elsewhere", queue="other"))
    store.workflow_insert(queued("timed", created_at=20, timeout_ms=1000))
    claim, n = trips(
        store, lambda: store.queue_claim(queue_name="q", partition_key=None, executor_id="me", now=100, max_rows=3)
    )
    assert n == 1 and claim.running is None and claim.retry_at is None
    # the first three in claim order (RETURNING gives no order)
    assert sorted(r.workflow_id for r in claim.rows) == ["new", "old", "urgent"]
    assert all(r.status == "PENDING" and r.executor_id == "me" and r.started_at == 100 for r in claim.rows)
    (timed,) = store.queue_claim(queue_name="q", partition_key=None, executor_id="me", now=100, max_rows=3).rows
    assert timed.deadline_at == 1100  # the timeout starts at the claim
    assert _claim(store) == []


def test_concurrent_claimers_take_disjoint_rows(store: Store) -> None:
    for i in range(40):
        store.workflow_insert(queued(f"w{i}", created_at=i))
    taken: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    barrier = threading.Barrier(len(taken))

    def claim(me: str) -> None:
        barrier.wait()
        while True:
            rows = store.queue_claim(queue_name="q", partition_key=None, executor_id=me, now=1, max_rows=3).rows
            if not rows:
                return
            taken[me].extend(r.workflow_id for r in rows)

    threads = [threading.Thread(target=claim, args=(me,)) for me in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = [w for ids in taken.values() for w in ids]
    assert sorted(everything) == sorted(f"w{i}" for i in range(40))


def test_claim_under_a_concurrency_limit(store: Store) -> None:
    store.workflow_insert(wf("running", queue_name="q", executor="other"))
    for i in range(4):
        store.workflow_insert(queued(f"w{i}", created_at=i))
    claim, n = trips(
        store,
        lambda: store.queue_claim(
            queue_name="q", partition_key=None, executor_id="me", now=100, max_rows=10, concurrency=2
        ),
    )
    assert [r.workflow_id for r in claim.rows] == ["w0"]
    assert claim.running is not None and sorted(claim.running) == ["running", "w0"]
    assert n == LIMITED_CLAIM_TRIPS[store.dialect] + 1  # + the slot holders
    again = store.queue_claim(queue_name="q", partition_key=None, executor_id="me", now=100, max_rows=10, concurrency=2)
    assert again.rows == [] and again.running is not None


def test_claim_under_a_rate_limit(store: Store) -> None:
    store.workflow_insert(wf("started", queue_name="q", status="SUCCESS", started_at=60))
    for i in range(3):
        store.workflow_insert(queued(f"w{i}", created_at=i))
    claim, n = trips(
        store,
        lambda: store.queue_claim(
            queue_name="q",
            partition_key=None,
            executor_id="me",
            now=100,
            max_rows=10,
            rate_limit=2,
            rate_period_ms=50,
        ),
    )
    assert [r.workflow_id for r in claim.rows] == ["w0"]
    assert claim.retry_at == 110 and n == LIMITED_CLAIM_TRIPS[store.dialect]  # oldest start 60 + 50


def test_claim_stops_when_the_queue_runs_dry_before_a_limit(store: Store) -> None:
    store.workflow_insert(queued("only"))
    claim = store.queue_claim(queue_name="q", partition_key=None, executor_id="me", now=1, max_rows=5, concurrency=9)
    assert [r.workflow_id for r in claim.rows] == ["only"] and claim.running is None and claim.retry_at is None


def test_claim_by_partition_and_app_version(store: Store) -> None:
    store.workflow_insert(queued("p1", queue_partition_key="k1", app_version="v1"))
    store.workflow_insert(queued("p2", queue_partition_key="k2", app_version="v2"))
    store.workflow_insert(queued("p1-old", queue_partition_key="k1", app_version="v0"))
    claim = store.queue_claim(queue_name="q", partition_key="k1", executor_id="me", now=1, max_rows=5, app_version="v1")
    assert [r.workflow_id for r in claim.rows] == ["p1"]
    limited = store.queue_claim(queue_name="q", partition_key="k2", executor_id="me", now=1, max_rows=5, concurrency=1)
    assert [r.workflow_id for r in limited.rows] == ["p2"]


def test_probe(store: Store) -> None:
    result, n = trips(store, lambda: store.queue_probe(queue_name="q"))
    assert result == (False, None) and n == 1
    store.workflow_insert(wf("later", executor=None, status="DELAYED", queue_name="q", available_at=70))
    store.workflow_insert(wf("sooner", executor=None, status="DELAYED", queue_name="q", available_at=40))
    assert store.queue_probe(queue_name="q") == (False, 40)
    store.workflow_insert(queued("ready"))
    assert store.queue_probe(queue_name="q") == (True, 40)


def test_promote_makes_due_work_ready(store: Store) -> None:
    store.workflow_insert(wf("due", executor=None, status="DELAYED", queue_name="q", available_at=40))
    store.workflow_insert(wf("later", executor=None, status="DELAYED", queue_name="q", available_at=70))
    hints = Hints(store)
    next_due, n = trips(store, lambda: store.queue_promote(queue_name="q", now=50))
    assert next_due == 70 and n == 2 and hints.take() == [("queue", "q", "")]
    due = store.workflow_get("due")
    assert due is not None and due.status == "ENQUEUED"
    assert store.queue_promote(queue_name="q", now=60) == 70 and hints.take() == []
    assert store.queue_promote(queue_name="q", now=80) is None


def test_partitions_with_ready_work_in_key_order(store: Store) -> None:
    for key in ("b", "a", "c", "a"):
        store.workflow_insert(queued(f"w-{key}-{len(key)}-{id(key)}", queue_partition_key=key))
    store.workflow_insert(wf("running", queue_name="q", queue_partition_key="z"))
    partitions, n = trips(store, lambda: store.queue_partitions(queue_name="q"))
    assert partitions == ["a", "b", "c"] and n == 1


def test_release_returns_a_claimed_row_to_its_queue(store: Store) -> None:
    store.workflow_insert(queued("w1"))
    _claim(store)
    hints = Hints(store)
    assert store.queue_release(workflow_id="w1", executor_id="someone-else", now=5) is False
    released, n = trips(store, lambda: store.queue_release(workflow_id="w1", executor_id="me", now=5))
    assert released and n == 1 and hints.take() == [("queue", "q", "requeued")]
    row = store.workflow_get("w1")
    assert row is not None and row.status == "ENQUEUED" and row.executor_id is None and row.started_at is None


# -- claims across partitions ------------------------------------------------------------------
def _parts(store: Store, me: str = "me", now: int = 100, n: int = 10, **limits: object) -> list[str]:
    claim = store.queue_claim_partitions(queue_name="q", executor_id=me, now=now, max_rows=n, **limits)  # type: ignore[arg-type]
    return sorted(r.workflow_id for r in claim.rows)


def _fill(store: Store, sizes: dict[str, int]) -> None:
    for key, size in sizes.items():
        for i in range(size):
            store.workflow_insert(queued(f"{key}{i}", created_at=i + 1, queue_partition_key=key))


def _done(store: Store, *ids: str) -> None:
    for wid in ids:
        row = store.workflow_get(wid)
        assert row is not None and row.executor_id is not None
        store.workflow_finish(
            workflow_id=wid, executor_id=row.executor_id, status="SUCCESS", output=None, error=None, now=200
        )


def test_partition_claim_is_round_robin_so_a_crowded_partition_starves_no_other(store: Store) -> None:
    _fill(store, {"hot": 50, "cold": 1, "warm": 2})
    claim, n = trips(store, lambda: store.queue_claim_partitions(queue_name="q", executor_id="me", now=1, max_rows=4))
    assert n == 1 and claim.running is None and claim.retry_at is None
    # every partition's first row, then the next rank (in key order, the rotation starting nowhere)
    assert sorted(r.workflow_id for r in claim.rows) == ["cold0", "hot0", "hot1", "warm0"]
    assert claim.after == "hot"


def test_partition_claim_rotates_which_partition_goes_first(store: Store) -> None:
    _fill(store, {"a": 3, "b": 3, "c": 3})
    served, after = [], None
    for _ in range(4):
        claim = store.queue_claim_partitions(queue_name="q", executor_id="me", now=1, max_rows=1, after=after)
        (row,) = claim.rows
        served.append(row.queue_partition_key)
        after = claim.after
    assert served == ["a", "b", "c", "a"]


def test_partition_concurrency_and_worker_concurrency_apply_per_partition(store: Store) -> None:
    _fill(store, {"a": 3, "b": 3})
    assert _parts(store, concurrency=2, worker_concurrency=1) == ["a0", "b0"]
    assert _parts(store, concurrency=2, worker_concurrency=1) == []  # this executor's room is used
    claim = store.queue_claim_partitions(
        queue_name="q", executor_id="other", now=1, max_rows=10, concurrency=2, worker_concurrency=1
    )
    assert sorted(r.workflow_id for r in claim.rows) == ["a1", "b1"]
    assert _parts(store, me="third", concurrency=2) == []  # two PENDING in each partition
    _done(store, "a0")
    assert _parts(store, me="third", concurrency=2) == ["a2"]


def test_global_concurrency_caps_the_whole_queue(store: Store) -> None:
    _fill(store, {"a": 3, "b": 3, "c": 3})
    claim, _ = trips(
        store,
        lambda: store.queue_claim_partitions(
            queue_name="q", executor_id="me", now=1, max_rows=10, concurrency=2, global_concurrency=2
        ),
    )
    assert sorted(r.workflow_id for r in claim.rows) == ["a0", "b0"]
    assert claim.running is not None and sorted(claim.running) == ["a0", "b0"]
    assert claim.after == "b"
    again = store.queue_claim_partitions(
        queue_name="q", executor_id="x", now=1, max_rows=10, global_concurrency=2, after=claim.after
    )
    assert again.rows == [] and again.running is not None
    _done(store, "a0")
    nxt = store.queue_claim_partitions(
        queue_name="q", executor_id="x", now=1, max_rows=10, global_concurrency=2, after=claim.after
    )
    assert [r.workflow_id for r in nxt.rows] == ["c0"]  # the rotation reaches the partition left waiting


def test_partition_rate_limit_applies_per_partition(store: Store) -> None:
    store.workflow_insert(wf("started", queue_name="q", status="SUCCESS", started_at=60, queue_partition_key="a"))
    _fill(store, {"a": 2, "b": 2})
    claim = store.queue_claim_partitions(
        queue_name="q", executor_id="me", now=100, max_rows=10, rate_limit=1, rate_period_ms=50
    )
    assert sorted(r.workflow_id for r in claim.rows) == ["b0"]
    assert claim.retry_at == 110  # the oldest start in the window (60) leaves it at 110


def test_partition_claims_under_a_global_limit_never_exceed_it_together(store: Store) -> None:
    _fill(store, {k: 10 for k in "abcdefgh"})
    taken: dict[str, list[str]] = {"x": [], "y": [], "z": []}
    barrier = threading.Barrier(len(taken))

    def claim(me: str) -> None:
        barrier.wait()
        for _ in range(5):
            rows = store.queue_claim_partitions(
                queue_name="q", executor_id=me, now=1, max_rows=3, global_concurrency=5
            ).rows
            taken[me].extend(r.workflow_id for r in rows)

    threads = [threading.Thread(target=claim, args=(me,)) for me in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = [w for ids in taken.values() for w in ids]
    assert len(everything) == len(set(everything)) == 5

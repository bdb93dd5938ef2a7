"""Retention on both databases: garbage_collect deletes exactly the finished workflows beyond its
limits (every table checked), keeps running, queued and delayed work and a finished parent whose
child still runs, two collectors at once delete each row once, a collection during a busy queue
loses nothing, the ``retention`` config runs a background collector, and the CLI's ``workflow gc``."""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

import pytest

from tests.cli.test_cli import fails, ok_json, run
from tests.conftest import wait_until
from transact import DBOS, DBOSClient, Queue, SetWorkflowID
from transact.engine import retention
from transact.engine.clock import now_ms
from transact.errors import ConfigError
from transact.storage import Store, open_store
from transact.storage.rows import WorkflowRow

TABLES = {
    "workflow_status": "workflow_id",
    "operation_outputs": "workflow_id",
    "notifications": "destination_id",
    "workflow_events": "workflow_id",
    "streams": "workflow_id",
}


def _ids(store: Store) -> dict[str, set[str]]:
    def unit(tx: Any) -> dict[str, set[str]]:
        return {t: {r[0] for r in tx.all(f"SELECT DISTINCT {c} FROM {t}")} for t, c in TABLES.items()}

    return store.read(unit)  # type: ignore[attr-defined,no-any-return]


def _old_row(wid: str, status: str, *, at: int = 1_000, **fields: Any) -> WorkflowRow:
    values = {"name": "ghost", "created_at": at, "updated_at": at, **fields}
    return WorkflowRow(workflow_id=wid, status=status, **values)


def test_collects_exactly_the_finished_workflows_with_everything_recorded_for_them(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def twice(x: int) -> int:
        return 2 * x

    @DBOS.workflow()
    def talker(x: int) -> int:
        DBOS.set_event("e", x)
        DBOS.write_stream("s", x)
        DBOS.close_stream("s")
        got = DBOS.recv("in", timeout_seconds=10)
        return twice(x) + int(got)

    @DBOS.workflow()
    def failing() -> None:
        raise ValueError("no")

    handles = []
    for i in range(3):
        with SetWorkflowID(f"talk-{i}"):
            handles.append(DBOS.start_workflow(talker, i))
        DBOS.send(f"talk-{i}", 1, "in")
        DBOS.send(f"talk-{i}", 1, "unread")  # never received: goes with its workflow
    assert [h.get_result() for h in handles] == [1, 3, 5]
    with SetWorkflowID("fail"), pytest.raises(ValueError):
        failing()
    store = DBOS._rt().store
    # Old, but never finished: kept whatever their age.
    store.workflow_insert(_old_row("old-pending", "PENDING", executor_id="gone"))
    store.workflow_insert(_old_row("old-enqueued", "ENQUEUED", queue_name="nowhere"))
    store.workflow_insert(_old_row("old-delayed", "DELAYED", queue_name="nowhere", available_at=10**13))
    before = _ids(store)
    assert {"talk-0", "fail"} <= before["workflow_status"] and "talk-0" in before["notifications"]

    assert DBOS.garbage_collect(cutoff_epoch_ms=now_ms() + 1) == 4
    after = _ids(store)
    assert after["workflow_status"] == {"old-pending", "old-enqueued", "old-delayed"}
    for table in TABLES:
        assert not after[table] & {"talk-0", "talk-1", "talk-2", "fail"}, table
    # The id can be used again: a new start runs again (nothing is replayed from the deleted run).
    with SetWorkflowID("fail"), pytest.raises(ValueError):
        failing()
    assert DBOS.get_workflow_status("fail").status == "ERROR"  # type: ignore[union-attr]


def test_the_cutoff_is_the_completion_time_and_rows_threshold_keeps_the_newest(dbos: type[DBOS]) -> None:
    store = DBOS._rt().store
    # Created long ago but finished recently: kept by a cutoff between the two.
    store.workflow_insert(_old_row("slow", "SUCCESS", at=10, updated_at=5_000))
    for i in range(10):
        store.workflow_insert(_old_row(f"w{i}", "SUCCESS", at=1_000 + i))
    assert DBOS.garbage_collect(cutoff_epoch_ms=1_005) == 5
    assert DBOS.get_workflow_status("slow") is not None and DBOS.get_workflow_status("w5") is not None
    assert DBOS.garbage_collect(rows_threshold=3) == 3  # keeps slow, w9, w8
    left = {s.workflow_id for s in DBOS.list_workflows()}
    assert left == {"slow", "w9", "w8"}
    assert DBOS.garbage_collect(rows_threshold=3) == 0
    assert DBOS.garbage_collect() == 0  # no limit: nothing
    assert DBOS.garbage_collect(rows_threshold=0) == 3


def test_a_finished_parent_whose_child_still_runs_is_kept(dbos: type[DBOS]) -> None:
    release = threading.Event()

    @DBOS.step()
    def hold() -> None:
        assert release.wait(20)

    @DBOS.workflow()
    def child() -> str:
        hold()
        return "child"

    @DBOS.workflow()
    def parent() -> str:
        DBOS.start_workflow(child)
        return "parent"

    with SetWorkflowID("parent"):
        assert parent() == "parent"
    assert DBOS.garbage_collect(rows_threshold=0) == 0
    assert DBOS.get_workflow_status("parent") is not None
    release.set()
    kids = DBOS.list_workflows(parent_workflow_id="parent")
    DBOS.retrieve_workflow(kids[0].workflow_id).get_result()
    assert DBOS.garbage_collect(rows_threshold=0) == 2


def test_bad_arguments_are_refused(dbos: type[DBOS]) -> None:
    with pytest.raises(ConfigError, match="cutoff_epoch_ms"):
        DBOS.garbage_collect(cutoff_epoch_ms=-1)
    with pytest.raises(ConfigError, match="rows_threshold"):
        DBOS.garbage_collect(rows_threshold="10")  # type: ignore[arg-type]


def test_a_paced_collection_rests_between_batches_and_still_deletes_everything(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.admin_insert_synthetic(count=2_500, id_prefix="old-", names=["n"], statuses=["SUCCESS"], now=50_000)
    rests: list[float] = []
    monkeypatch.setattr(retention, "_rest", rests.append)
    assert retention.garbage_collect(store, now_ms(), batch=1_000, pace=0.5) == 2_500
    assert len(rests) == 2 and all(r > 0 for r in rests)  # after each full batch, not after the last
    assert store.retention_boundary(keep=1) is None


def test_each_batch_is_swept_once_inside_a_later_batch_and_the_rest_at_the_end(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Late rows (a write whose existence check ran just before the delete committed) are swept
    # SWEEP_DELAY batches later inside that batch's transaction; what no later batch took, at the
    # end. A step written for a (just finished) deleted workflow after its batch committed is gone
    # afterwards (Postgres: no keys on the steps; SQLite's keys refuse it, asserted in tests/storage).
    store.admin_insert_synthetic(count=1_500, id_prefix="new-", names=["n"], statuses=["SUCCESS"], now=now_ms() - 10)
    batches: list[list[str]] = []
    swept_in_batch: list[list[str]] = []
    swept_at_end: list[list[str]] = []
    delete, sweep = store.retention_delete, store.retention_sweep

    def spy_delete(**kwargs: Any) -> Any:
        assert kwargs["sweep_also_steps"] == kwargs["sweep_also"]  # all finished just now: unsettled
        swept_in_batch.append(list(kwargs["sweep_also"]))
        done = delete(**kwargs)
        assert done is not None
        batches.append(list(done.deleted))
        return done

    def late_step(_: float) -> None:
        if len(batches) == 1 and store.sql.owned_deletes:  # type: ignore[attr-defined]
            store.write(  # type: ignore[attr-defined]
                lambda tx: tx.run(
                    "INSERT INTO operation_outputs (workflow_id, function_id, function_name) VALUES (?, 1, 'f')",
                    (batches[0][0],),
                )
            )

    monkeypatch.setattr(store, "retention_delete", spy_delete)

    def spy_sweep(ids: Any, steps: Any) -> None:
        swept_at_end.append(list(ids))
        sweep(ids, steps)

    monkeypatch.setattr(store, "retention_sweep", spy_sweep)
    monkeypatch.setattr(retention, "_rest", late_step)
    assert retention.garbage_collect(store, now_ms(), batch=100, pace=0.5) == 1_500
    assert len(batches) == 16  # 15 full batches and the one that finds nothing
    delay = retention.SWEEP_DELAY
    assert swept_in_batch == [[]] * delay + batches[: 16 - delay]
    assert swept_at_end == [[i for b in batches[16 - delay :] for i in b]]
    assert sorted(i for b in swept_in_batch + swept_at_end for i in b) == sorted(i for b in batches for i in b)
    left = store.read(lambda tx: tx.all("SELECT count(*) FROM operation_outputs"))  # type: ignore[attr-defined]
    assert left[0][0] == 0


def test_steps_are_swept_only_for_workflows_that_may_still_take_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finished long before the collection (SETTLE_MS) and not cancelled: no checkpoint can land
    # for it any more, so its steps are not swept; cancelled or recently finished ones are.
    old = now_ms() - retention.SETTLE_MS - 60_000
    store.admin_insert_synthetic(count=300, id_prefix="old-", names=["n"], statuses=["SUCCESS", "CANCELLED"], now=old)
    store.admin_insert_synthetic(count=100, id_prefix="new-", names=["n"], statuses=["ERROR"], now=now_ms() - 10)
    steps_swept: list[str] = []
    all_swept: list[str] = []
    sweep = store.retention_sweep

    def spy_sweep(ids: Any, steps: Any) -> None:
        all_swept.extend(ids)
        steps_swept.extend(steps)
        sweep(ids, steps)

    monkeypatch.setattr(store, "retention_sweep", spy_sweep)
    assert retention.garbage_collect(store, now_ms(), batch=1_000, pace=0) == 400
    cancelled = {f"old-{n}" for n in range(1, 301) if n % 2 == 1}
    assert len(all_swept) == 400 and set(steps_swept) == cancelled | {f"new-{n}" for n in range(1, 101)}


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"batch": 0}, "batch"), ({"pace": -1}, "pace"), ({"pace": math.nan}, "pace")]
)
def test_bad_batch_or_pace_is_refused(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        retention.garbage_collect(store, now_ms(), **kwargs)


def test_two_collectors_at_once_delete_each_row_once(store: Store, db_url: str) -> None:
    store.admin_insert_synthetic(count=3_000, id_prefix="old-", names=["n"], statuses=["SUCCESS", "ERROR"], now=50_000)
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def collect() -> None:
        try:
            with DBOSClient(db_url) as client:
                start.wait(10)
                counts.append(retention.garbage_collect(client.store, now_ms(), batch=100))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=collect) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and sum(counts) == 3_000, (counts, errors)
    assert store.retention_boundary(keep=1) is None


def test_a_collection_during_a_busy_queue_loses_nothing(dbos: type[DBOS]) -> None:
    queue = Queue("busy", worker_concurrency=8)
    runs: list[str] = []
    lock = threading.Lock()

    @DBOS.step()
    def work(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    def job(x: int) -> int:
        y = work(work(x))
        with lock:
            runs.append(DBOS.workflow_id or "")
        return y

    ids = [f"job-{i}" for i in range(150)]
    stop = threading.Event()
    deleted: list[int] = []

    def collector() -> None:
        while not stop.is_set():
            deleted.append(DBOS.garbage_collect(rows_threshold=0))

    gc = threading.Thread(target=collector)
    gc.start()
    try:
        for wid in ids:
            with SetWorkflowID(wid):
                queue.enqueue(job, 1)
        wait_until(lambda: len(runs) >= len(ids), timeout=60, what="every job ran")
        wait_until(lambda: not DBOS.list_workflows(status=["PENDING", "ENQUEUED"]), what="every job finished")
    finally:
        stop.set()
        gc.join(30)
    assert sorted(runs) == sorted(ids)  # each ran once: none lost, none run twice
    assert DBOS.garbage_collect(rows_threshold=0) + sum(deleted) == len(ids)
    assert DBOS.list_workflows() == []


def test_the_retention_config_collects_in_the_background(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "retention": {"max_finished": 2, "interval_seconds": 0.05}})

    @DBOS.workflow()
    def noop(x: int) -> int:
        return x

    DBOS.launch()
    try:
        for i in range(5):
            with SetWorkflowID(f"n{i}"):
                noop(i)
        wait_until(lambda: len(DBOS.list_workflows()) == 2, what="background collection")
        assert {s.workflow_id for s in DBOS.list_workflows()} == {"n3", "n4"}
    finally:
        DBOS.destroy(destroy_registry=True)


def test_the_retention_config_sets_the_batch_size_and_pace(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 2 at pace 0.5: three batches (two full, one short) for 5 workflows, each full
    # one followed by a rest of half its time; nothing is left.
    rests: list[float] = []
    monkeypatch.setattr(retention, "_rest", rests.append)
    monkeypatch.setattr(retention.RetentionService, "first_delay_s", 3600.0)  # only the call below collects
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "retention": {"max_finished": 0, "interval_seconds": 3600, "batch_size": 2, "pace": 0.5}})

    @DBOS.workflow()
    def noop(x: int) -> int:
        return x

    try:
        DBOS.launch()
        for i in range(5):
            noop(i)
        batches: list[int] = []
        real_delete = DBOS._rt().store.retention_delete

        def spy(**kwargs: Any) -> Any:
            batches.append(kwargs["limit"])
            return real_delete(**kwargs)

        monkeypatch.setattr(DBOS._rt().store, "retention_delete", spy)
        service = next(s for s in DBOS._rt().services if isinstance(s, retention.RetentionService))
        assert service.collect_once() == 5
        assert batches == [2, 2, 2] and len(rests) == 2 and all(r >= 0 for r in rests)
        assert DBOS.list_workflows() == []
    finally:
        DBOS.destroy(destroy_registry=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"finished_for_day": 3}, "keys among"),
        ({}, "keys among"),
        ({"interval_seconds": 5}, "needs 'finished_for_days' or 'max_finished'"),
        ({"finished_for_days": "30"}, "finished_for_days"),
        ({"max_finished": 1.5}, "max_finished"),
        ({"max_finished": 10, "interval_seconds": 0}, "interval_seconds"),
        ({"max_finished": 10, "batch_size": 0}, "'batch_size' must be an int from 1"),
        ({"max_finished": 10, "batch_size": 5.0}, "batch_size"),
        ({"max_finished": 10, "batch_size": True}, "batch_size"),
        ({"max_finished": 10, "pace": -0.1}, "'pace' must be a number >= 0"),
        ({"max_finished": 10, "pace": "fast"}, "pace"),
        ([30], "must be a dict"),
    ],
)
def test_bad_retention_config_is_refused(config: dict[str, Any], value: Any, message: str) -> None:
    DBOS.destroy(destroy_registry=True)
    try:
        with pytest.raises(ConfigError, match=message):
            DBOS(config={**config, "retention": value})
    finally:
        DBOS.destroy(destroy_registry=True)


def test_cli_workflow_gc(store: Store, db_url: str) -> None:
    for i in range(4):
        store.workflow_insert(_old_row(f"w{i}", "SUCCESS", at=1_000 + i))
    store.workflow_insert(_old_row("running", "PENDING"))
    assert ok_json("workflow", "gc", "--keep", "3", "--db", db_url)["deleted"] == 1
    assert ok_json("workflow", "gc", "--older-than", "1d", "--db", db_url)["deleted"] == 3
    proc = run("workflow", "gc", "--older-than", "1d", "--keep", "0", "--db", db_url)
    assert proc.returncode == 0 and "deleted 0 finished workflows" in proc.stdout, proc.stderr
    fails(run("workflow", "gc", "--older-than", "soon", "--db", db_url), "--older-than")
    fails(run("workflow", "gc", "--db", db_url), "--older-than", "--keep")
    assert json.loads(json.dumps(store.workflow_get("running") is not None))


def test_garbage_collect_async(dbos: type[DBOS]) -> None:
    import asyncio

    store = DBOS._rt().store
    for i in range(3):
        store.workflow_insert(_old_row(f"w{i}", "SUCCESS", at=1_000 + i))
    assert asyncio.run(DBOS.garbage_collect_async(rows_threshold=1)) == 2
    assert asyncio.run(DBOS.garbage_collect_async(cutoff_epoch_ms=now_ms())) == 1


def _strict(store: Store, db_url: str, timeout_ms: int) -> Store:
    """The same database through a URL that sets a statement_timeout on every connection (a retry
    budget, so a statement retried as contention fails the test instead of hanging it)."""
    if store.dialect == "sqlite":
        pytest.skip("SQLite has no statement_timeout: a batch there waits for the write lock (contention, retried)")
    strict = open_store(f"{db_url}?options=-c%20statement_timeout%3D{timeout_ms}", retry_timeout_s=5)
    strict.migrate()
    return strict


def _cancellations(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "transact.retention" and "cancel" in r.getMessage()]


_HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND (classid::bigint << 32) + objid::bigint = %s"
)


def test_a_batch_the_database_cancels_goes_again_at_half_the_size_keeping_the_fleet_lock(
    store: Store, db_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch that runs past the statement_timeout (here: it waits for the turn behind a long
    # batch of another collector) is cancelled by the server; the collection goes on with batches
    # half the size, on the same session, still the fleet's only collector, and grows the size
    # back once batches go through again.
    import psycopg

    from transact.storage import Cancelled
    from transact.storage.retention import RETENTION_LOCK_KEY, RETENTION_TURN_KEY

    strict = _strict(store, db_url, 300)
    store.admin_insert_synthetic(count=2_000, id_prefix="old-", names=["n"], statuses=["SUCCESS"], now=50_000)
    caplog.set_level(logging.WARNING, logger="transact.retention")
    batches: list[tuple[int, bool]] = []  # (limit, went through)
    delete = strict.retention_delete

    def spy(**kwargs: Any) -> Any:
        try:
            done = delete(**kwargs)
        except Cancelled:
            batches.append((kwargs["limit"], False))
            raise
        batches.append((kwargs["limit"], True))
        return done

    monkeypatch.setattr(strict, "retention_delete", spy)
    outcome: list[Any] = []

    def collect() -> None:
        try:
            outcome.append(retention.garbage_collect(strict, now_ms(), batch=640, pace=0, exclusive=True))
        except BaseException as exc:  # reported below
            outcome.append(exc)

    try:
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_advisory_lock(%s)", (RETENTION_TURN_KEY,))
            collector = threading.Thread(target=collect)
            collector.start()
            wait_until(lambda: len(_cancellations(caplog)) >= 1, what="a cancelled batch")
            holders = admin.execute(_HOLDERS, (RETENTION_LOCK_KEY,)).fetchall()
            wait_until(lambda: len(_cancellations(caplog)) >= 2, what="a second cancelled batch")
            assert admin.execute(_HOLDERS, (RETENTION_LOCK_KEY,)).fetchall() == holders and len(holders) == 1
            admin.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_TURN_KEY,))
            collector.join(30)
    finally:
        strict.close()
    assert outcome == [2_000]
    first, second = _cancellations(caplog)[:2]
    assert "statement timeout" in first and "batches of 320 workflows instead of 640" in first
    assert "batches of 160 workflows instead of 320" in second
    cancelled = max(i for i, (_, through) in enumerate(batches) if not through)
    after = [limit for limit, _ in batches[cancelled + 1 :]]
    assert after[0] == batches[cancelled][0] // 2  # the first batch that went through: half the cancelled one
    grown = after[retention.REGROW_AFTER]
    assert grown == 2 * after[0] and after[: retention.REGROW_AFTER] == [after[0]] * retention.REGROW_AFTER
    assert store.retention_boundary(keep=1) is None  # everything collected


def test_a_batch_of_one_the_database_keeps_cancelling_ends_the_collection_with_the_fix(
    store: Store, db_url: str
) -> None:
    import psycopg

    from transact.errors import TransactError
    from transact.storage.retention import RETENTION_TURN_KEY

    strict = _strict(store, db_url, 100)
    store.admin_insert_synthetic(count=50, id_prefix="old-", names=["n"], statuses=["SUCCESS"], now=50_000)
    try:
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute("SELECT pg_advisory_lock(%s)", (RETENTION_TURN_KEY,))
            # 8, 4, 2, then 1 three times: each cancelled
            with pytest.raises(TransactError, match=r"single workflow 3 times in a row.*raise it"):
                retention.garbage_collect(strict, now_ms(), batch=8, pace=0)
    finally:
        strict.close()
    assert store.retention_boundary(keep=50) is not None  # nothing was deleted: 50 finished remain

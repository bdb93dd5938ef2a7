"""Workload 6: @DBOS.transaction overhead against a bare SQLAlchemy transaction doing the same
insert. Per-transaction cost inside a workflow is the slope of workflow latency over the number
of transactions (so the workflow's own start/finish writes cancel out)."""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Recorder, Result, Target, launched, ms_stats, slope
from transact import DBOS

_INSERT = "INSERT INTO bench_rows (v) VALUES (:v)"


def _define() -> tuple[Any, Any]:
    from sqlalchemy import text

    @DBOS.transaction()
    def bench_txn_insert() -> None:
        DBOS.sql_session.execute(text(_INSERT), {"v": "x"})

    @DBOS.workflow()
    def bench_txn_wf(k: int) -> int:
        for _ in range(k):
            bench_txn_insert()
        return k

    return bench_txn_insert, bench_txn_wf


_defined: tuple[Any, Any] | None = None


def _engine(url: str) -> Any:
    """A bare SQLAlchemy engine set up like the library's application-database engine: psycopg 3
    and SERIALIZABLE (the decorator's default) on Postgres; on SQLite WAL with the default
    synchronous=FULL and BEGIN IMMEDIATE."""
    from sqlalchemy import create_engine, event

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        # The same isolation level as @DBOS.transaction's default.
        return create_engine(url).execution_options(isolation_level="SERIALIZABLE")
    engine = create_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _connect(conn: Any, _record: Any) -> None:
            conn.isolation_level = None
            conn.execute("PRAGMA journal_mode=WAL")

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def run(target: Target, rec: Recorder, *, quick: bool) -> None:
    global _defined
    if not hasattr(DBOS, "transaction"):
        rec.skip("6.txn", "not available (DBOS.transaction missing)")
        return
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    if _defined is None:
        _defined = _define()
    txn_insert, txn_wf = _defined
    n = 60 if quick else 300
    app_url = target.app_url("txn")
    engine = _engine(app_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, v TEXT)"
                if target.name == "sqlite"
                else "CREATE TABLE bench_rows (id BIGSERIAL PRIMARY KEY, v TEXT)"
            )
        )

    def bare() -> None:
        with Session(engine) as session, session.begin():
            session.execute(text(_INSERT), {"v": "x"})

    # Interleaved in one loop, so the bare and the library calls see the same disk and load (on
    # SQLite the application database commits with fsync, whose latency drifts on a shared disk).
    cases: dict[str, Any] = {"bare": bare, "plain": txn_insert}
    cases.update({f"wf{k}": (lambda k=k: txn_wf(k)) for k in (0, 1, 5)})
    samples: dict[str, list[float]] = {name: [] for name in cases}
    url = target.fresh_url("txn")
    with launched(url, application_database_url=app_url):
        for i in range(n + 10):
            for name, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                if i >= 10:
                    samples[name].append(time.perf_counter() - t0)
    engine.dispose()
    stats = {name: ms_stats(values) for name, values in samples.items()}
    base, plain = stats["bare"], stats["plain"]
    rec.add(Result("6.txn", "bare SQLAlchemy transaction (insert)", "ms", p50=base["p50"], p99=base["p99"]))
    floor = base["p50"]
    points = [(k, stats[f"wf{k}"]["p50"]) for k in (0, 1, 5)]
    per_txn = slope(points)
    rec.add(
        Result(
            "6.txn",
            "@transaction outside a workflow",
            "ms",
            p50=plain["p50"],
            p99=plain["p99"],
            floor="bare txn ms",
            floor_value=floor,
            x_floor=plain["p50"] / floor,
        )
    )
    rec.add(
        Result(
            "6.txn",
            "@transaction in a workflow (slope)",
            "ms",
            value=per_txn,
            floor="bare txn ms",
            floor_value=floor,
            x_floor=per_txn / floor,
            note=f"overhead {per_txn - floor:+.3f} ms per transaction",
        )
    )

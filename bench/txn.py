"""Workload 6: @DBOS.transaction overhead against a bare SQLAlchemy transaction doing the same
insert. Per-transaction cost inside a workflow is the slope of workflow latency over the number
of transactions (so the workflow's own start/finish writes cancel out)."""

from __future__ import annotations

from typing import Any

from bench.harness import Recorder, Result, Target, launched, ms_stats, slope, timed
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
    """A bare SQLAlchemy engine; SQLite gets the same WAL/NORMAL pragmas the library uses."""
    from sqlalchemy import create_engine, event

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")

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

    base = ms_stats(timed(bare, n, warmup=10))
    engine.dispose()
    rec.add(Result("6.txn", "bare SQLAlchemy transaction (insert)", "ms", p50=base["p50"], p99=base["p99"]))
    floor = base["p50"]

    url = target.fresh_url("txn")
    with launched(url, application_database_url=app_url):
        plain = ms_stats(timed(txn_insert, n, warmup=10))
        points = []
        for k in (0, 1, 5):
            s = ms_stats(timed(lambda k=k: txn_wf(k), n, warmup=5))
            points.append((k, s["p50"]))
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

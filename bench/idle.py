"""Workload 7: idle cost. Queries per second an idle launched app issues, counted three ways:
the store's ``round_trips`` counter, Postgres ``pg_stat_database.xact_commit`` for the bench
database, and on SQLite every statement on every library connection (trace callback), which also
sees the ``PRAGMA data_version`` poll that the counter does not."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from bench.harness import CpuMeter, PostgresTarget, Recorder, Result, Target, launched, store
from bench.queues import declare_queue


@contextlib.contextmanager
def _trace_sqlite() -> Iterator[list[int]]:
    """Count statements on every connection the SQLite driver opens while active."""
    from transact.storage import sqlite as driver

    counter = [0]
    lock = threading.Lock()
    original = driver.SqliteStore._connect

    def traced(self: Any) -> sqlite3.Connection:
        conn = original(self)

        def on_statement(_sql: str) -> None:
            with lock:
                counter[0] += 1

        conn.set_trace_callback(on_statement)
        return conn

    driver.SqliteStore._connect = traced  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        driver.SqliteStore._connect = original  # type: ignore[method-assign]


def _xact_commit(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0])


def run(target: Target, rec: Recorder, *, quick: bool) -> None:
    window = 5.0 if quick else 10.0
    url = target.fresh_url("idle")
    queue_note = "with a declared queue" if declare_queue("bench_idle_q") else "no queues (not available)"
    with _trace_sqlite() as statements, launched(url):
        time.sleep(2.0)  # let launch-time recovery, first heartbeats and schedule loads settle
        st = store()
        trips0, stmts0 = st.round_trips, statements[0]
        pg0 = _xact_commit(url) if isinstance(target, PostgresTarget) else 0
        with CpuMeter(url if isinstance(target, PostgresTarget) else None) as cpu:
            time.sleep(window)
        trips = (st.round_trips - trips0) / window
        stmts = (statements[0] - stmts0) / window
        # minus our own 3 probe transactions in the window (CpuMeter enter/exit, this read)
        pg = (_xact_commit(url) - pg0 - 3) / window if isinstance(target, PostgresTarget) else None
    rec.add(Result("7.idle", f"store round trips ({queue_note})", "queries/s", value=trips, extra={"window_s": window}))
    rec.add(Result("7.idle", "client process CPU", "% of a core", value=cpu.client_s / window * 100))
    if cpu.server_s is not None:
        rec.add(Result("7.idle", "Postgres backends CPU (bench db)", "% of a core", value=cpu.server_s / window * 100))
    if pg is not None:
        rec.add(
            Result(
                "7.idle",
                "pg_stat_database xact_commit",
                "xacts/s",
                value=pg,
                note="every session on the bench db incl. autovacuum; stats flush lag ~1 s",
            )
        )
    else:
        rec.add(Result("7.idle", "sqlite statements (incl. data_version poll)", "stmts/s", value=stmts))

"""Physical floors, measured in the same run with the same driver settings as the library:
a single-row INSERT + COMMIT round trip, the same from several threads at once, and a batched
insert rate. Every overhead in the report is also printed as a multiple of one of these.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import PostgresTarget, Recorder, Result, SqliteTarget, Target, ms_stats, timed

# Shaped like a step checkpoint: (text, int) primary key and a small pickled payload.
_DDL = "CREATE TABLE bench_floor (workflow_id TEXT, function_id INTEGER, output {blob}, PRIMARY KEY (workflow_id, function_id))"
_PAYLOAD = b"\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00\x8c\x02ok\x94."


def measure(target: Target, rec: Recorder, *, quick: bool) -> None:
    n = 300 if quick else 2000
    if isinstance(target, PostgresTarget):
        _postgres(target, rec, n)
    else:
        assert isinstance(target, SqliteTarget)
        _sqlite(target, rec, n)


def _record(rec: Recorder, samples: list[float], rate: float, threads: int, batch_rate: float) -> None:
    s = ms_stats(samples)
    rec.floors["insert_commit_ms"] = s["p50"]
    rec.floors["insert_commit_concurrent_per_s"] = rate
    rec.floors["batched_insert_rows_per_s"] = batch_rate
    rec.add(Result("floor", "INSERT+COMMIT round trip", "ms", p50=s["p50"], p99=s["p99"]))
    rec.add(Result("floor", f"INSERT+COMMIT, {threads} threads", "commits/s", value=rate))
    rec.add(Result("floor", "batched insert (1000/tx)", "rows/s", value=batch_rate))


def _postgres(target: PostgresTarget, rec: Recorder, n: int) -> None:
    with target.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute(_DDL.format(blob="BYTEA"))
        counter = iter(range(10**9))

        def one() -> None:
            conn.execute(
                "INSERT INTO bench_floor (workflow_id, function_id, output) VALUES (%s, %s, %s)",
                ("w", next(counter), _PAYLOAD),
            )

        samples = timed(one, n, warmup=20)

    threads = 10  # the library's default pool size
    rate = _concurrent(lambda: target.connect(), threads, n, _pg_insert)

    with target.connect() as conn:
        rows = [("b", i, _PAYLOAD) for i in range(1000)]
        batches = 5 if n < 1000 else 20
        t0 = time.perf_counter()
        for b in range(batches):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_floor (workflow_id, function_id, output) VALUES (%s, %s, %s)",
                    [(f"b{b}", i, p) for _, i, p in rows],
                )
        batch_rate = batches * 1000 / (time.perf_counter() - t0)
        conn.execute("DROP TABLE bench_floor")
    _record(rec, samples, rate, threads, batch_rate)


def _pg_insert(conn: Any, tid: int, i: int) -> None:
    conn.execute(
        "INSERT INTO bench_floor (workflow_id, function_id, output) VALUES (%s, %s, %s)", (f"t{tid}", i, _PAYLOAD)
    )


def _sqlite_insert(conn: Any, tid: int, i: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO bench_floor (workflow_id, function_id, output) VALUES (?, ?, ?)", (f"t{tid}", i, _PAYLOAD)
    )
    conn.execute("COMMIT")


def _concurrent(connect: Any, threads: int, per_thread: int, op: Any) -> float:
    """Commits per second with ``threads`` threads, each on its own connection."""
    conns = [connect() for _ in range(threads)]
    start = threading.Barrier(threads + 1)

    def work(tid: int) -> None:
        conn = conns[tid]
        for i in range(5):
            op(conn, tid, -1 - i)  # warm-up (and let psycopg prepare the statement)
        start.wait()
        for i in range(per_thread):
            op(conn, tid, i)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    rate = threads * per_thread / (time.perf_counter() - t0)
    for c in conns:
        c.close()
    return rate


def _sqlite(target: SqliteTarget, rec: Recorder, n: int) -> None:
    path = target.path("floor")
    conn = target.connect(path)
    conn.execute(_DDL.format(blob="BLOB"))
    counter = iter(range(10**9))

    def one() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO bench_floor (workflow_id, function_id, output) VALUES (?, ?, ?)",
            ("w", next(counter), _PAYLOAD),
        )
        conn.execute("COMMIT")

    samples = timed(one, n, warmup=20)

    # SQLite has one writer at a time; several threads measure what contention costs on top.
    threads = 4
    rate = _concurrent(lambda: target.connect(path), threads, n, _sqlite_insert)

    batches = 5 if n < 1000 else 20
    t0 = time.perf_counter()
    for b in range(batches):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO bench_floor (workflow_id, function_id, output) VALUES (?, ?, ?)",
            [(f"b{b}", i, _PAYLOAD) for i in range(1000)],
        )
        conn.execute("COMMIT")
    batch_rate = batches * 1000 / (time.perf_counter() - t0)
    conn.close()
    _record(rec, samples, rate, threads, batch_rate)

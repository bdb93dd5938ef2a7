"""Outages are visible: while the system database is out of reach a process logs one warning when
the outage starts, how long it has lasted at intervals, and one line when it ends.

Postgres only: the outage is a TCP proxy in this test that is cut and restored (the shared server
keeps running). SQLite has no connection to lose: the errors it retries are lock contention,
which is not an outage."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import fresh_postgres, wait_until
from transact import DBOS
from transact.storage import Unavailable, open_store, outage


class Proxy:
    """Forwards 127.0.0.1:<port> to the Postgres server until ``cut()``: then open connections are
    dropped and new ones closed at once, until ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = int(self.server.getsockname()[1])
        self.is_cut = threading.Event()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.is_cut.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.is_cut.set()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.is_cut.clear()

    def close(self) -> None:
        self.closed.set()
        self.cut()
        self.server.close()
        self.thread.join(2)


@pytest.fixture
def proxied_url(pg_database: str) -> Iterator[tuple[str, Proxy]]:
    fresh_postgres(pg_database)
    proxy = Proxy(("127.0.0.1", 5432))
    yield pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"), proxy
    proxy.close()


def outage_lines(caplog: pytest.LogCaptureFixture, phrase: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "transact.storage" and phrase in r.getMessage()]


def test_an_outage_is_logged_once_at_intervals_and_at_its_end(
    proxied_url: tuple[str, Proxy], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, proxy = proxied_url
    monkeypatch.setattr(outage, "REPORT_INTERVAL_S", 0.3)
    caplog.set_level(logging.INFO, logger="transact")
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "outage", "system_database_url": url, "shutdown_timeout_seconds": 2})

    @DBOS.workflow()
    def echo(x: int) -> int:
        return x

    try:
        DBOS.launch()
        pool = DBOS._rt().store._pool  # type: ignore[attr-defined]
        monkeypatch.setattr(pool, "timeout", 1.0)  # a pool wait per attempt of 1 s, not 10: a quicker test
        assert echo(1) == 1
        proxy.cut()
        results: list[Any] = []
        callers = [threading.Thread(target=lambda: results.append(len(DBOS.list_workflows()))) for _ in range(3)]
        for t in callers:
            t.start()
        wait_until(lambda: outage_lines(caplog, "has been unreachable for"), timeout=30, what="an interval report")
        started = outage_lines(caplog, "cannot reach the system database")
        assert len(started) == 1, started  # one per process, however many threads wait it out
        assert f"host 127.0.0.1, port {proxy.port}" in started[0] and "retrying until it is back" in started[0]
        assert not outage_lines(caplog, "reachable again")
        proxy.restore()
        for t in callers:
            t.join(60)
        assert results == [1, 1, 1]
        wait_until(lambda: outage_lines(caplog, "reachable again"), timeout=10, what="the end of the outage")
        assert len(outage_lines(caplog, "cannot reach the system database")) == 1
        assert echo(2) == 2
    finally:
        proxy.restore()
        DBOS.destroy(destroy_registry=True)


def test_a_caller_out_of_budget_ends_the_outage_and_the_next_reports_it_again(
    proxied_url: tuple[str, Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = proxied_url
    caplog.set_level(logging.INFO, logger="transact")
    store = open_store(url, retry_timeout_s=0.5, connect_timeout_s=1)
    try:
        store.migrate()
        proxy.cut()
        for _ in range(2):
            with pytest.raises(Unavailable):
                store.schema_version()
        proxy.restore()
        reports = outage_lines(caplog, "cannot reach the system database")
        assert len(reports) == 2 and all("retrying for up to 0.5 s" in r for r in reports), reports
    finally:
        store.close()


@pytest.mark.parametrize("setting", ["lock_timeout", "statement_timeout"])
def test_a_statement_the_server_cancels_is_contention_retried_without_an_outage(
    pg_database: str, setting: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A write that waits on a row lock past the role's lock_timeout or statement_timeout: the
    # server answered and the connection is sound, so the unit is retried with back-off until the
    # lock is free, and no outage is reported.
    import psycopg

    from tests.storage.builders import wf

    fresh_postgres(pg_database)
    caplog.set_level(logging.INFO, logger="transact")
    store = open_store(f"{pg_database}?options=-c%20{setting}%3D50")
    try:
        store.migrate()
        store.workflow_insert(wf("w"))

        def rename(tx: Any) -> int:
            return tx.run("UPDATE workflow_status SET name = 'renamed' WHERE workflow_id = 'w'")  # type: ignore[no-any-return]

        with psycopg.connect(pg_database, options="-c search_path=transact") as other:  # one open transaction
            other.execute("SELECT 1 FROM workflow_status WHERE workflow_id = 'w' FOR UPDATE")
            before = store.round_trips
            writer = threading.Thread(target=lambda: store.write(rename))  # type: ignore[attr-defined]
            writer.start()
            wait_until(lambda: store.round_trips - before >= 6, what="three cancelled attempts")  # BEGIN, UPDATE
            assert writer.is_alive() and not store.outage.ongoing  # type: ignore[attr-defined]
        writer.join(10)  # the other transaction committed: the lock is free
        assert not writer.is_alive()
        name = store.read(lambda tx: tx.one("SELECT name FROM workflow_status WHERE workflow_id = 'w'"))  # type: ignore[attr-defined]
        assert name is not None and name[0] == "renamed"
        assert not outage_lines(caplog, "cannot reach the system database")
    finally:
        store.close()

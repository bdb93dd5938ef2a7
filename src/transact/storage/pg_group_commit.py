"""Group commit on Postgres: concurrent single-row writes of one lane share one statement.

Must not import the engine or the facade.
"""

from __future__ import annotations

import contextlib
import json
import operator
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import psycopg
from psycopg import pq

from transact.storage import _pgfast
from transact.storage.dialect import SetForm


class _Request:
    __slots__ = ("done", "failed", "form", "lead", "params", "rowcount", "sql")

    def __init__(self, sql: str, params: Sequence[Any], form: SetForm) -> None:
        self.sql = sql
        self.params = params
        self.form = form
        self.rowcount = -1
        self.failed = False
        self.lead = False
        # A bare lock, held until the batch is done: cheaper to make and to wake than an Event.
        self.done = threading.Lock()
        self.done.acquire()


class GroupCommit:
    """Group commit for one lane of writes: calls that arrive while a batch is in flight go
    together, as one statement over a JSON array per set form (several forms as CTEs of one
    statement): one round trip, one WAL flush. The rare calls that cannot join it (a value over
    _SET_VALUE_LIMIT, a second call for the same row) run beside it in one transaction, a round
    trip each. The first caller in an idle moment leads at once, so a lone write waits for nobody.
    A failed batch commits nothing; each of its callers then retries alone (the statements are
    safe to repeat)."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._busy = False
        self._conn: psycopg.Connection[Any] | None = None  # the leader's own: leaders take turns

    def submit(self, sql: str, params: Sequence[Any], form: SetForm) -> int | None:
        """The statement's row count, or None when its batch failed (retry alone)."""
        request = _Request(sql, params, form)
        with self._lock:
            self._queue.append(request)
            lead = not self._busy
            self._busy = True
        if not lead:
            request.done.acquire()
            if not request.lead:
                return None if request.failed else request.rowcount
        self._lead()
        return None if request.failed else request.rowcount

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._execute(batch)
        except BaseException as exc:
            for request in batch:
                request.failed = True
            if not isinstance(exc, Exception):
                raise  # (after the finally below has released every waiter)
        finally:
            self._release(batch)

    def _release(self, batch: list[_Request]) -> None:
        for request in batch:
            if not request.lead:
                request.done.release()
        with self._lock:
            if self._queue:  # hand the lead to the oldest waiter; it takes everything queued
                successor = self._queue[0]
                successor.lead = True
                successor.done.release()
            else:
                self._busy = False

    def _execute(self, batch: list[_Request]) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = self._connect()
        try:
            if len(batch) == 1:
                batch[0].rowcount = _pgfast.run(conn, batch[0].sql, batch[0].params)
                return
            sets, singles = _plan(batch)
            if not singles:  # the usual case: one statement, atomic by itself, in autocommit
                self._write_sets(conn, sets)
                return
            with _pgfast.transaction(conn):
                for request in singles:
                    request.rowcount = _pgfast.run(conn, request.sql, request.params)
                self._write_sets(conn, sets)
        except BaseException:
            if conn.closed or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                self._conn = None  # broken, or its state is unknown: the next batch connects afresh
                with contextlib.suppress(Exception):
                    conn.close()
            raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @staticmethod
    def _write_sets(conn: psycopg.Connection[Any], sets: list[tuple[SetForm, dict[tuple[str, ...], _Request]]]) -> None:
        if not sets:
            return
        forms = tuple(form for form, _ in sets)
        payloads: list[bytes | None] = []
        for form, rows in sets:
            pick = _pickers.get(form)
            if pick is None:
                pick = _pickers[form] = operator.itemgetter(*form.columns)
            payloads.append(json.dumps([pick(r.params) for r in rows.values()], default=bytes.hex).encode())
            for request in rows.values():
                request.rowcount = 0
        result = _pgfast.execute(conn, _combined_sql(forms), (payloads, [0] * len(payloads)))
        for row in _pgfast.text_rows(result):
            n = int(row[0] or 0)
            sets[n][1][cast(tuple[str, ...], row[1 : 1 + len(forms[n].key)])].rowcount = 1  # keys are never NULL


_SET_VALUE_LIMIT = 4096  # bytes values above this go as their own binary statement, not hex in JSON
_pickers: dict[SetForm, Callable[[Sequence[Any]], Any]] = {}
_combined: dict[tuple[SetForm, ...], str] = {}


def _combined_sql(forms: tuple[SetForm, ...]) -> str:
    """One statement running several set forms (data-modifying CTEs), returning (form, key...) rows."""
    sql = _combined.get(forms)
    if sql is None:
        width = max(len(form.key) for form in forms)
        ctes = ", ".join(f"f{n} AS ({form.sql})" for n, form in enumerate(forms))
        selects = " UNION ALL ".join(
            f"SELECT {n}, "
            + ", ".join(f"k{k}::text" if k < len(form.key) else "NULL" for k in range(width))
            + f" FROM f{n}"
            for n, form in enumerate(forms)
        )
        sql = _combined[forms] = f"WITH {ctes} {selects}"
    return sql


def _has_large_value(params: Sequence[Any], positions: tuple[int, ...]) -> bool:
    for i in positions:
        value = params[i]
        if value is not None and len(value) > _SET_VALUE_LIMIT:
            return True
    return False


def _plan(batch: list[_Request]) -> tuple[list[tuple[SetForm, dict[tuple[str, ...], _Request]]], list[_Request]]:
    """Split a batch into set-form groups (by row key: two calls for one row can't share a
    statement, the later one goes alone; so do large values) and single statements."""
    groups: dict[SetForm, dict[tuple[str, ...], _Request]] = {}
    singles: list[_Request] = []
    for request in batch:
        form = request.form
        params = request.params
        if _has_large_value(params, form.blobs):
            singles.append(request)
            continue
        rows = groups.setdefault(form, {})
        key = tuple(str(params[i]) for i in form.key)
        if key in rows:
            singles.append(request)
        else:
            rows[key] = request
    # one order of forms, so a lane prepares one combined statement per set of forms
    return sorted(groups.items(), key=lambda group: group[0].sql), singles

"""Outbox enqueuer that dies right after its commit: python outbox_app.py <db_url>.

Opens its own connection on the system database (sqlite3 or psycopg), records an order row and
enqueues workflow "effectful" (queue "shared", id "outbox-crash", argument 5) through
DBOSClient.enqueue_in_transaction in one transaction, and enqueues "outbox-rolled" in a second
transaction that it rolls back. After the commit it prints COMMITTED and SIGKILLs itself, before
anything could dispatch the work from here.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from typing import Any

import psycopg

from transact import DBOSClient

DB_URL = sys.argv[1]


def connect() -> Any:
    if DB_URL.startswith("sqlite:///"):
        conn = sqlite3.connect(DB_URL[len("sqlite:///") :])
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
        conn.commit()
        return conn
    conn = psycopg.connect(DB_URL)
    conn.execute("CREATE TABLE IF NOT EXISTS public.orders (id TEXT PRIMARY KEY)")
    conn.commit()
    return conn


def main() -> None:
    client = DBOSClient(DB_URL)
    conn = connect()
    conn.execute("INSERT INTO orders (id) VALUES ('rolled')")
    client.enqueue_in_transaction(
        conn, {"queue_name": "shared", "workflow_name": "effectful", "workflow_id": "outbox-rolled"}, 6
    )
    conn.rollback()
    conn.execute("INSERT INTO orders (id) VALUES ('committed')")
    client.enqueue_in_transaction(
        conn, {"queue_name": "shared", "workflow_name": "effectful", "workflow_id": "outbox-crash"}, 5
    )
    conn.commit()
    print("COMMITTED", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()

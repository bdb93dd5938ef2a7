"""Worker process for the DBOSClient tests: python admin_worker_app.py <db_url>.

Declares Queue("client-q") and the workflows "greet" and "echo_event" (known to the tests by name
only), launches, prints READY and serves until SIGTERM (graceful shutdown).
"""

from __future__ import annotations

import signal
import sys
import threading

from transact import DBOS, Queue

queue = Queue("client-q")


@DBOS.step()
def shout(text: str) -> str:
    return text.upper()


@DBOS.workflow(name="greet")
def greet(name: str, punctuation: str = "!") -> str:
    return shout(f"hello {name}") + punctuation


@DBOS.workflow(name="echo_event")
def echo_event() -> int:
    value: int = DBOS.recv("in", timeout_seconds=30)
    DBOS.set_event("out", value * 2)
    return value


if __name__ == "__main__":
    DBOS(config={"name": "admin-worker", "system_database_url": sys.argv[1], "shutdown_timeout_seconds": 2})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    DBOS.launch()
    print("READY", flush=True)
    stop.wait()
    DBOS.destroy()

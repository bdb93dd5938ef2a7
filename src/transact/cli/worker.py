"""``transact worker MODULE``: the unit to run N times under a process manager.

Imports the application module (the current directory is searched first), launches DBOS unless the
module did, and then serves its queues, schedules and consumers. ``--port`` exposes ``/healthz``
and ``/metrics``. SIGTERM (or Ctrl-C) shuts down gracefully: running workflows get the configured
``shutdown_timeout_seconds`` to finish, the rest is handed over to other executors at once, and the
process exits 0. ``--drain`` exits the same way by itself once the queues it serves hold no
ENQUEUED or PENDING work (batch jobs, scale to zero).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from transact._config import ENV_SYSTEM_DB
from transact._dbos import DBOS
from transact._facade._base import FacadeBase
from transact.cli.app import ConfigPath, Db, app, fail, resolve_url
from transact.engine import drain as draining
from transact.engine import metrics

log = logging.getLogger("transact")


@app.command("worker")
def worker_command(
    module: Annotated[str, typer.Argument(help="The application module to import (e.g. app or myapp.workers).")],
    port: Annotated[
        int | None, typer.Option("--port", help="Serve /healthz and /metrics on this port (0: any free port).")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address the HTTP endpoint binds.")] = "127.0.0.1",
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit once the served queues hold no ENQUEUED or PENDING work.")
    ] = False,
    db: Db = None,
    config: ConfigPath = None,
) -> None:
    """Run the application's queues, schedules and consumers until SIGTERM (or, with --drain,
    until its queues are empty), then hand its work over and exit 0."""
    if port is not None and not 0 <= port <= 65535:
        fail(f"--port {port}: give a TCP port from 0 to 65535 (0 picks a free one)")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Installed before the launch, so the engine leaves SIGTERM to us (it would re-raise it
        # after shutting down, and the process would exit by the signal, not with 0).
        signal.signal(signum, lambda *_: stop.set())
    if db:
        os.environ[ENV_SYSTEM_DB] = db  # the module's own DBOS(config=...) picks it up too
    _import(module)
    if FacadeBase._current is None:
        DBOS(config={"name": module, "system_database_url": resolve_url(db, config)})
    DBOS.launch()
    rt = DBOS._rt()
    server = None
    if port is not None:
        from transact.integrations.http_metrics import MetricsServer

        metrics.enable()
        server = MetricsServer(
            rt.settings.system_database_url,
            host=host,
            port=port,
            describe=lambda: _describe(),
            lease_seconds=rt.settings.lease_seconds,
        )
        server.start()
    served = draining.served_queues(rt)
    where = f", http://{server.address[0]}:{server.address[1]}" if server is not None else ""
    print(f"transact worker {module}: executor {rt.executor_id}, queues {served}{where}", flush=True)
    if drain:
        threading.Thread(target=_drain_then_stop, args=(stop,), name="transact-drain", daemon=True).start()
    while not stop.wait(1.0):
        pass
    DBOS.destroy()
    if server is not None:
        server.stop()
    print(f"transact worker {module}: stopped", flush=True)
    # Exit now: a workflow blocked outside a step (not interruptible) must not keep the process
    # alive after its work was handed over.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def _import(module: str) -> None:
    name = module[:-3].replace(os.sep, ".") if module.endswith(".py") else module
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            fail(f"cannot import {module!r}: no module {exc.name!r} (run from the directory that holds it)")
        raise


def _describe() -> dict[str, Any] | None:
    current = FacadeBase._current
    if current is None or not current._runtime.launched:
        return None
    rt = current._runtime
    return {"executor_id": rt.executor_id, "app_version": rt.app_version, "queues": draining.served_queues(rt)}


def _drain_then_stop(stop: threading.Event) -> None:
    try:
        DBOS.drain_queues()
    finally:
        stop.set()

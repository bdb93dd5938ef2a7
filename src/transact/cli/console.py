"""``transact console``: the web console (pages + JSON API) over a system database."""

from __future__ import annotations

from typing import Annotated

import typer

from transact.cli.app import ConfigPath, Db, app, connect, fail
from transact.console.security import ENV_TOKEN, check_bind, resolve_token
from transact.console.server import ConsoleServer


@app.command("console")
def console_command(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; anything but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).")] = 8321,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Show everything, change nothing (no cancel, resume, fork, delete).")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help=f"Require 'Authorization: Bearer TOKEN' on every request (default: ${ENV_TOKEN}).",
            show_default=False,
        ),
    ] = None,
    lease: Annotated[float, typer.Option("--lease", help="Seconds of silence after which an executor is dead.")] = 30.0,
    db: Db = None,
    config: ConfigPath = None,
) -> None:
    """Serve the web console: workflows, steps, queues, schedules, executors, stranded work, and
    cancel / resume / fork / delete, with a JSON API under /api. Stop with Ctrl-C."""
    secret = resolve_token(token)
    if not 0 <= port <= 65535:
        fail(f"--port must be 0-65535, got {port}")
    try:
        check_bind(host, secret)  # before touching the database: a refusal is about the flags
    except ValueError as exc:
        fail(str(exc))
    client = connect(db, config)
    try:
        try:
            server = ConsoleServer(
                client.store, host=host, port=port, token=secret, read_only=read_only, lease_seconds=lease
            )
        except ValueError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        mode = " (read-only)" if read_only else ""
        typer.echo(f"transact console{mode} at {server.url}  (Ctrl-C to stop)", err=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    finally:
        client.destroy()

"""The ``transact`` command line: ``transact --help``.

``main`` turns expected failures (unknown ids, unreachable databases, bad arguments) into one line
on stderr and exit code 1; unexpected ones keep their traceback.
"""

from __future__ import annotations

import logging
import sys

from transact.cli.app import CliError, app
from transact.cli.console import console_command as console_command  # registers `transact console`
from transact.cli.gc import workflow_gc as workflow_gc  # registers `transact workflow gc`
from transact.cli.replay import replay_command as replay_command  # registers `transact replay`
from transact.cli.stats import stats_command as stats_command  # registers `transact stats`
from transact.cli.transfer import copy as copy  # registers `transact copy`, `workflow export|import`
from transact.cli.worker import worker_command as worker_command  # registers `transact worker`
from transact.errors import TransactError

__all__ = ["app", "main"]


def main() -> None:
    # Connection retries are logged as warnings by the pool and the store; the CLI reports the
    # outcome once instead.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    logging.getLogger("transact").setLevel(logging.ERROR)
    try:
        app()
    except (CliError, TransactError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"error: {message}\n")
        sys.exit(1)

"""The application database's start-up check: which connection failures it retries."""

from __future__ import annotations

import psycopg
import pytest

from transact.storage.app_outcomes import _refused

# What a Postgres server says while it replays its WAL after a crash (seen by the chaos test: a
# worker launched during the server's restart), and what it says for good.
RECOVERING = (
    'connection failed: connection to server at "127.0.0.1", port 54635 failed: '
    "FATAL:  the database system is not yet accepting connections\n"
    "DETAIL:  Consistent recovery state has not been yet reached."
)
STARTING = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  the database system is starting up'
NO_DATABASE = (
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nope" does not exist'
)


@pytest.mark.parametrize(("message", "refused"), [(RECOVERING, False), (STARTING, False), (NO_DATABASE, True)])
def test_a_server_in_crash_recovery_is_waited_for_not_refused(message: str, refused: bool) -> None:
    assert _refused(psycopg.OperationalError(message)) is refused

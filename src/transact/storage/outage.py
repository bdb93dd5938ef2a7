"""What a store says while its database is out of reach: one warning when an outage starts (with
how long it will be retried), a warning at intervals while it lasts, one line when it ends.

One ``OutageLog`` per store, shared by every thread retrying through it, so a process reports an
outage once however many threads wait it out. Must not import the engine or the facade.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("transact.storage")

REPORT_INTERVAL_S = 30.0  # how often a lasting outage is reported again


class OutageLog:
    """Counts the callers retrying an outage; the first starts it, a success ends it."""

    def __init__(self, where: str) -> None:
        self.where = where  # the database, password redacted, with host and port where it has them
        self._lock = threading.Lock()
        self._since: float | None = None
        self._reported = 0.0
        self._callers = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def join(self, exc: Exception, budget_s: float | None) -> None:
        """A caller starts retrying after ``exc``; the first of an outage logs the warning."""
        with self._lock:
            self._callers += 1
            if self._since is not None:
                return
            self._since = self._reported = time.monotonic()
        how_long = "until it is back" if budget_s is None else f"for up to {budget_s:g} s"
        log.warning("cannot reach the system database %s (%s); retrying %s", self.where, exc, how_long)

    def tick(self, exc: Exception) -> None:
        """Between attempts: report a lasting outage every ``REPORT_INTERVAL_S``."""
        since = self._since
        if since is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._reported < REPORT_INTERVAL_S:
                return
            self._reported = now
        log.warning(
            "the system database %s has been unreachable for %.0f s (%s); still retrying", self.where, now - since, exc
        )

    def leave(self, *, reached: bool) -> None:
        """A caller stops retrying: it ``reached`` the database (the outage is over) or gave up
        (the outage ends with the last caller; the error it raises says the rest)."""
        with self._lock:
            self._callers -= 1
            since = self._since
            if since is None or (not reached and self._callers > 0):
                return
            self._since = None
        if reached:
            log.info("the system database %s is reachable again after %.1f s", self.where, time.monotonic() - since)

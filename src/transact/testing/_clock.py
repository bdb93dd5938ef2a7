"""``TestClock``: a frozen, controllable clock for tests of time-driven workflows."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from types import TracebackType

from transact.engine import clock as engine_clock
from transact.errors import ConfigError

_installed: list[TestClock] = []  # at most one: the clock this process reads now
_install_lock = threading.Lock()


def _checked_datetime(value: object, api: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ConfigError(
            f"{api} needs a timezone-aware datetime (e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)), got {value!r}"
        )
    return value


class TestClock:
    """A clock that stands still until the test moves it, installed for this process only.

    While installed (``with TestClock() as clock:``, ``clock.install()``, or the pytest fixture
    ``transact_clock``), every time the engine stores or waits for reads it: durable sleeps,
    ``recv`` / ``get_event`` / stream timeouts, workflow timeouts, delayed queue work and debounce
    windows, rate-limit windows and cron ticks. ``advance`` moves it forward and wakes whatever it
    made due at once, so a 30-day sleep ends as soon as the test says a month has passed, and a cron
    schedule fires exactly the ticks the clock passed (none skipped as late, none twice).

    It starts at ``start`` (an aware datetime; default: the real time at construction). Heartbeats
    and executor leases keep real time: other processes never see this clock. Install it before
    ``DBOS.launch`` or after: installing (and uninstalling) restarts cron ticks from its time.
    Steps do not advance it, so a time read inside a workflow stands still too.
    """

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            self._ns = engine_clock.real_ms() * 1_000_000
        else:
            self._ns = self._to_ns(_checked_datetime(start, "TestClock(start=...)"))
        self._lock = threading.Lock()

    @staticmethod
    def _to_ns(when: datetime) -> int:
        return round(when.timestamp() * 1000) * 1_000_000

    def _read_ns(self) -> int:
        return self._ns

    # -- reading ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The clock's time, as an aware UTC datetime (millisecond precision)."""
        return datetime.fromtimestamp(self.now_ms() / 1000, timezone.utc)

    def now_ms(self) -> int:
        """The clock's time in epoch milliseconds, as the engine stores it."""
        return self._ns // 1_000_000

    @property
    def installed(self) -> bool:
        return bool(_installed) and _installed[0] is self

    # -- moving -----------------------------------------------------------------------------------
    def advance(
        self,
        delta: timedelta | float | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        milliseconds: float = 0,
    ) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds) plus the keyword amounts,
        wake every wait it made due, and return the new time. It returns at once: wait for the
        effect (``wait_for_workflow``...), as it happens in the app's threads."""
        if isinstance(delta, bool) or not isinstance(delta, timedelta | int | float | None):
            raise ConfigError(f"TestClock.advance: delta must be a timedelta or a number of seconds, got {delta!r}")
        for name, value in (
            ("days", days),
            ("hours", hours),
            ("minutes", minutes),
            ("seconds", seconds),
            ("milliseconds", milliseconds),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"TestClock.advance: {name} must be a number, got {value!r}")
        step = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=milliseconds)
        if delta is not None:
            step += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ConfigError(f"TestClock.advance: the clock only moves forward, got {step}; use a positive amount")
        with self._lock:
            self._ns += round(step / timedelta(milliseconds=1)) * 1_000_000
        return self._moved()

    def set(self, when: datetime) -> datetime:
        """Move the clock forward to ``when`` (an aware datetime); as ``advance`` otherwise."""
        target = self._to_ns(_checked_datetime(when, "TestClock.set"))
        with self._lock:
            if target < self._ns:
                raise ConfigError(
                    f"TestClock.set: {when.isoformat()} is before the clock's time {self.now().isoformat()}; "
                    "the clock only moves forward (start a new TestClock to go back)"
                )
            self._ns = target
        return self._moved()

    def _moved(self) -> datetime:
        if self.installed:
            engine_clock.jumped()
        return self.now()

    # -- installing -------------------------------------------------------------------------------
    def install(self) -> TestClock:
        """Make this the process's clock (one at a time); returns itself."""
        with _install_lock:
            if _installed:
                if _installed[0] is self:
                    return self
                raise ConfigError(
                    "TestClock.install: another TestClock is installed in this process; uninstall it first "
                    "(leave its `with` block) or advance that one"
                )
            _installed.append(self)
            engine_clock.use(self._read_ns)
        return self

    def uninstall(self) -> None:
        """Give the process its real clock back (a no-op when this clock is not installed)."""
        with _install_lock:
            if not _installed or _installed[0] is not self:
                return
            _installed.clear()
            engine_clock.use(None)

    def __enter__(self) -> TestClock:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        state = "installed" if self.installed else "not installed"
        return f"TestClock({self.now().isoformat()}, {state})"

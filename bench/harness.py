"""Benchmark plumbing: database targets, app lifecycle, statistics and result records.

Everything here is workload-neutral; the workloads live in the sibling modules.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# One database per run (pid suffix), so concurrent runs by different people never collide.
PG_DB_PREFIX = os.environ.get("BENCH_PG_DB", "transact_bench")
# The SQLite durability mode under test (config sqlite_synchronous): NORMAL (default) or FULL.
SQLITE_SYNCHRONOUS = os.environ.get("BENCH_SQLITE_SYNCHRONOUS", "NORMAL").upper()


# -- statistics ---------------------------------------------------------------------------------
def pct(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms_stats(samples_s: list[float]) -> dict[str, float]:
    """Median / p99 / mean in milliseconds of samples given in seconds."""
    ms = [s * 1000 for s in samples_s]
    return {"p50": statistics.median(ms), "p99": pct(ms, 99), "mean": statistics.fmean(ms), "n": len(ms)}


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    num = sum((x - mx) * (y - my) for x, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return num / den


def timed(fn: Callable[[], Any], n: int, warmup: int = 5) -> list[float]:
    """Call ``fn`` ``warmup + n`` times; return the last ``n`` durations in seconds."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# -- results ------------------------------------------------------------------------------------
@dataclass
class Result:
    """One printed row. ``value`` is the headline number in ``unit``; ``x_floor`` says how many
    floors it costs (>1 = slower than the floor). ``target``/``ok`` only where the issue sets one."""

    workload: str
    metric: str
    unit: str
    value: float | None = None
    p50: float | None = None
    p99: float | None = None
    floor: str | None = None
    floor_value: float | None = None
    x_floor: float | None = None
    target: str | None = None
    ok: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def latency_row(
    workload: str,
    metric: str,
    samples_s: list[float],
    *,
    floor_name: str | None = None,
    floor: float | None = None,
    target_ms: float | None = None,
    **extra: Any,
) -> Result:
    """A latency row from samples in seconds: p50/p99 in ms, the p50 as a multiple of ``floor``
    (ms), and a pass/fail against ``p50 <= target_ms`` where the issue sets one."""
    s = ms_stats(samples_s)
    return Result(
        workload,
        metric,
        "ms",
        p50=s["p50"],
        p99=s["p99"],
        floor=floor_name,
        floor_value=floor,
        x_floor=s["p50"] / floor if floor else None,
        target=f"p50 <= {target_ms:g} ms" if target_ms is not None else None,
        ok=s["p50"] <= target_ms if target_ms is not None else None,
        **extra,
    )


class Recorder:
    def __init__(self, db: str) -> None:
        self.db = db
        self.results: list[Result] = []
        self.floors: dict[str, float] = {}
        self.skipped: list[tuple[str, str]] = []

    def add(self, result: Result) -> Result:
        self.results.append(result)
        print(f"  {result.workload:<12} {result.metric:<34} {_fmt_row(result)}", flush=True)
        return result

    def skip(self, workload: str, why: str) -> None:
        self.skipped.append((workload, why))
        print(f"  {workload:<12} skipped: {why}", flush=True)

    def as_json(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "floors": self.floors,
            "results": [asdict(r) for r in self.results],
            "skipped": [{"workload": w, "why": why} for w, why in self.skipped],
        }


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _fmt_row(r: Result) -> str:
    parts = []
    if r.value is not None:
        parts.append(f"{_num(r.value)} {r.unit}")
    if r.p50 is not None:
        parts.append(f"p50 {_num(r.p50)} p99 {_num(r.p99)} {r.unit if r.value is None else 'ms'}")
    if r.x_floor is not None:
        parts.append(f"{r.x_floor:.2f}x floor")
    if r.target:
        parts.append(f"target {r.target}: {'OK' if r.ok else 'MISS'}")
    if r.note:
        parts.append(r.note)
    return " | ".join(parts)


def table(rec: Recorder) -> str:
    """Markdown table of every result (printed at the end and pasted into RESULTS.md)."""
    head = (
        "| workload | metric | value | p50 | p99 | floor | x floor | target | |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rec.results:
        value = f"{_num(r.value)} {r.unit}" if r.value is not None else ""
        unit = "ms" if r.value is not None else r.unit
        p50 = f"{_num(r.p50)} {unit}" if r.p50 is not None else ""
        p99 = f"{_num(r.p99)} {unit}" if r.p99 is not None else ""
        floor = f"{r.floor} = {_num(r.floor_value)}" if r.floor else ""
        xf = f"{r.x_floor:.2f}x" if r.x_floor is not None else ""
        verdict = "" if r.ok is None else ("OK" if r.ok else "**MISS**")
        lines.append(
            f"| {r.workload} | {r.metric} | {value} | {p50} | {p99} | {floor} | {xf} | {r.target or ''} | {verdict} |"
        )
    for workload, why in rec.skipped:
        lines.append(f"| {workload} | skipped: {why} | | | | | | | |")
    return "\n".join(lines)


# -- database targets ---------------------------------------------------------------------------
class Target:
    """Where one run's databases live: fresh system databases per workload, plus raw connections
    configured exactly like the library's driver (for the floors)."""

    name: str

    def fresh_url(self, tag: str) -> str:
        raise NotImplementedError

    def app_url(self, tag: str) -> str:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteTarget(Target):
    name = "sqlite"

    def __init__(self) -> None:
        # On the real disk (not tmpfs), next to the repo, so WAL fsync behaviour is real.
        for stale in OUT.glob("sqlite-*"):  # left by runs that were killed
            if not os.path.exists(f"/proc/{stale.name.removeprefix('sqlite-')}"):
                shutil.rmtree(stale, ignore_errors=True)
        self.dir = OUT / f"sqlite-{os.getpid()}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def path(self, tag: str) -> Path:
        p = self.dir / f"{tag}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(str(p) + suffix)
        return p

    def fresh_url(self, tag: str) -> str:
        return f"sqlite:///{self.path(tag)}"

    def app_url(self, tag: str) -> str:
        return f"sqlite:///{self.path('app-' + tag)}"

    def connect(self, path: Path) -> sqlite3.Connection:
        """A connection set up like ``transact.storage.sqlite`` (WAL, synchronous=SQLITE_SYNCHRONOUS)."""
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous={SQLITE_SYNCHRONOUS})"

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresTarget(Target):
    name = "postgres"

    def __init__(self) -> None:
        self.db = f"{PG_DB_PREFIX}_{os.getpid()}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            _drop_stale(conn)
            for db in (self.db, self.db + "_app"):
                conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {db}")
        base = PG_ADMIN_URL.rpartition("/")[0]
        self.url = f"{base}/{self.db}"
        self.app = f"{base}/{self.db}_app"

    def fresh_url(self, tag: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS transact CASCADE")
        return self.url

    def app_url(self, tag: str) -> str:
        with psycopg.connect(self.app, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return self.app

    def connect(self, url: str | None = None) -> psycopg.Connection[Any]:
        """A connection set up like ``transact.storage.postgres`` (autocommit, psycopg 3 defaults)."""
        return psycopg.connect(url or self.url, autocommit=True)

    def version(self) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        assert row and sync and fsync
        return f"PostgreSQL {row[0]} (synchronous_commit={sync[0]}, fsync={fsync[0]}; psycopg {psycopg.__version__})"

    def close(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for db in (self.db, self.db + "_app"):
                conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _drop_stale(conn: psycopg.Connection[Any]) -> None:
    """Drop bench databases left by runs that were killed (their pid is gone)."""
    rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (PG_DB_PREFIX + "\\_%",)).fetchall()
    for (name,) in rows:
        pid = name[len(PG_DB_PREFIX) + 1 :].removesuffix("_app")
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- the app under test -------------------------------------------------------------------------
@contextlib.contextmanager
def launched(url: str, **config: Any) -> Iterator[Any]:
    """A launched DBOS on ``url``; destroyed afterwards (the registry is kept: workflows are
    registered once at import)."""
    from transact import DBOS

    DBOS.destroy()
    if url.startswith("sqlite:"):
        config = {"sqlite_synchronous": SQLITE_SYNCHRONOUS, **config}
    DBOS(config={"name": "bench", "system_database_url": url, "shutdown_timeout_seconds": 2, **config})
    DBOS.launch()
    try:
        yield DBOS
    finally:
        DBOS.destroy()


def store() -> Any:
    """The launched instance's store (for its ``round_trips`` counter)."""
    from transact import DBOS

    return DBOS._rt().store


def _proc_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _backend_pids(url: str) -> list[int]:
    """Server processes serving ``url``'s database (the server is local)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


class CpuMeter:
    """CPU seconds spent between enter and exit by this process (client) and, given a Postgres
    URL, by the server backends of that database (other sessions on the machine excluded;
    backends that exit before the end are missed)."""

    def __init__(self, pg_url: str | None = None) -> None:
        self.pg_url = pg_url
        self.client_s = 0.0
        self.server_s: float | None = None

    def __enter__(self) -> CpuMeter:
        self._c0 = time.process_time()
        self._s0 = {pid: _proc_cpu_s(pid) for pid in _backend_pids(self.pg_url)} if self.pg_url else {}
        return self

    def __exit__(self, *exc: object) -> None:
        self.client_s = time.process_time() - self._c0
        if self.pg_url:
            self.server_s = sum(_proc_cpu_s(pid) - self._s0.get(pid, 0.0) for pid in _backend_pids(self.pg_url))

    def per(self, n: int) -> str:
        text = f"CPU/wf: client {self.client_s / n * 1000:.2f} ms"
        if self.server_s is not None:
            text += f", postgres backends {self.server_s / n * 1000:.2f} ms"
        return text

    def extra(self, n: int) -> dict[str, float | None]:
        return {
            "client_cpu_ms_per_wf": self.client_s / n * 1000,
            "server_cpu_ms_per_wf": self.server_s / n * 1000 if self.server_s is not None else None,
        }


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        info["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    import platform

    info["python"] = platform.python_version()
    return info

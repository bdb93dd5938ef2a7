"""The chaos harness shared by tests/crash/test_chaos.py (short, in the suite) and scripts/chaos.sh
(long form: ``python -m tests.crash.chaos_harness --db sqlite|postgres --minutes N``).

Worker processes (apps/chaos_app.py) on one system database serve a queue with a global and a
per-worker concurrency limit; a DBOSClient enqueues workflows and sends each two messages; a fault
thread SIGKILLs workers at random moments (``random.Random(seed)``) and restarts them, alternately
with the same executor id (it recovers its own work) and with a new one (the dead one's work is
adopted); on Postgres the server is restarted (immediate mode: a crash) mid-run. ``verify`` then
checks every promise from the databases and the application's own records.

Postgres runs as a private cluster (``PrivatePostgres``: initdb + pg_ctl in a temporary folder on
a free port) so that restarting it disturbs nobody else.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from transact import DBOSClient

APP = Path(__file__).parent / "apps" / "chaos_app.py"
QUEUE = {"concurrency": 8, "worker_concurrency": 4}
WORKERS = 3
READY_TIMEOUT_S = 60.0


def expected_result(i: int) -> dict[str, object]:
    msgs = [f"m{i}-a", f"m{i}-b"]
    return {"i": i, "first": f"first-{i}", "square": i * i, "child": (i + 1) * 2, "got": msgs}


# -- a private Postgres cluster -----------------------------------------------------------------
def pg_bin_dir() -> Path | None:
    """The newest installed Postgres server binaries (initdb, pg_ctl), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """A throw-away cluster owned by the ``postgres`` OS user (we may run as root), trust auth."""

    def __init__(self, root: Path | None = None) -> None:
        bindir = pg_bin_dir()
        if bindir is None:
            raise RuntimeError("no Postgres server binaries under /usr/lib/postgresql/*/bin")
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="transact-chaos-pg-", dir=root))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.root)

    def _ctl(self, action: str, *extra: str) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "log"), "-o", opts, *extra
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """Crash and restart: open connections break, committed work survives (crash recovery)."""
        self._ctl("restart", "-m", "immediate")

    def stop(self) -> None:
        try:
            self._ctl("stop", "-m", "fast")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {dbname}")
        return self.url(dbname)


# -- the application database ---------------------------------------------------------------------
def _app_query(app_url: str, sql: str) -> list[tuple[Any, ...]]:
    if app_url.startswith("sqlite"):
        conn = sqlite3.connect(app_url.removeprefix("sqlite:///"), timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    with psycopg.connect(app_url) as pg:
        return pg.execute(sql).fetchall()


def prepare_app_db(app_url: str) -> None:
    """The user's table: one row per transaction run; ``k`` = "<workflow id>:<tx>" (no unique
    constraint, so a second run would show as a duplicate instead of failing)."""
    ddl = "CREATE TABLE chaos_effects (id INTEGER PRIMARY KEY{}, k TEXT NOT NULL, wid TEXT, tx INTEGER, val TEXT)"
    if app_url.startswith("sqlite"):
        conn = sqlite3.connect(app_url.removeprefix("sqlite:///"))
        with conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(ddl.format(""))
        conn.close()
    else:
        with psycopg.connect(app_url, autocommit=True) as pg:
            pg.execute(ddl.format(" GENERATED ALWAYS AS IDENTITY"))


# -- the run --------------------------------------------------------------------------------------
@dataclass
class Worker:
    slot: int
    generation: int
    executor_id: str
    proc: subprocess.Popen[bytes]
    started_at: float


@dataclass
class Report:
    workflows: int = 0
    kills_same_id: int = 0
    kills_adopt: int = 0
    server_restarts: int = 0
    seconds: float = 0.0
    max_global_overlap: int = 0
    max_worker_overlap: int = 0
    runs: int = 0
    resumed_same_id: int = 0  # interrupted runs resumed by a process with the same executor id
    resumed_adopted: int = 0  # ... by a process with another executor id
    problems: list[str] = field(default_factory=list)
    faults_at_done: list[int] = field(default_factory=list)  # workflows finished when each fault hit

    def _faults_text(self) -> str:
        hits = self.faults_at_done
        if len(hits) <= 10:
            return str(hits)
        busy = sum(1 for n in hits if n < self.workflows)
        return f"{busy} of {len(hits)} faults before the last workflow finished"

    def summary(self) -> str:
        return (
            f"{self.workflows} workflows in {self.seconds:.1f} s ({self.workflows / max(self.seconds, 1e-9):.1f}/s); "
            f"kills: {self.kills_same_id} restarted with the same executor id, {self.kills_adopt} adopted by a new one; "
            f"server restarts: {self.server_restarts}; workflow runs: {self.runs} (resumed by the same executor id: "
            f"{self.resumed_same_id}, adopted by another: {self.resumed_adopted}); "
            f"max concurrent runs: {self.max_global_overlap} (limit {QUEUE['concurrency']}), "
            f"per process: {self.max_worker_overlap} (limit {QUEUE['worker_concurrency']}); "
            f"finished when each fault hit: {self._faults_text()}; problems: {len(self.problems)}"
        )


class Chaos:
    """Workers, the client and the fault schedule of one chaos run."""

    def __init__(
        self,
        sys_url: str,
        app_url: str,
        workdir: Path,
        *,
        seed: int,
        restart_server: Callable[[], None] | None = None,
        pause_s: tuple[float, float] = (0.3, 1.5),
        sleep_s: float = 0.05,
    ) -> None:
        """``pause_s``: the range of the random pause before each fault; ``sleep_s``: each
        workflow's durable sleep (longer keeps the queue busy through the fault schedule)."""
        self.sys_url, self.app_url, self.workdir = sys_url, app_url, workdir
        self.rng = random.Random(seed)
        self.restart_server = restart_server
        self.pause_s = pause_s
        self.sleep_s = sleep_s
        self.workers: dict[int, Worker] = {}
        self.dead: list[tuple[int, float]] = []  # (pid, monotonic-independent wall time of the kill)
        self.report = Report()
        self._generation = 0
        self._stop_faults = threading.Event()
        self._fault_error: BaseException | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        prepare_app_db(app_url)
        self.client = DBOSClient(sys_url, retry_timeout_s=120)
        self.wids: dict[str, int] = {}

    # -- processes ----------------------------------------------------------------------------
    def spawn(self, slot: int, executor_id: str) -> Worker:
        self._generation += 1
        log = open(self.workdir / f"worker-{slot}-{self._generation}.log", "wb")  # noqa: SIM115 - the child owns it
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TRANSACT_EXECUTOR_ID": executor_id,
            "CHAOS_SLEEP": str(self.sleep_s),
        }
        proc = subprocess.Popen(
            [sys.executable, str(APP), self.sys_url, self.app_url, str(self.workdir), json.dumps(QUEUE)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        worker = Worker(slot, self._generation, executor_id, proc, time.time())
        self.workers[slot] = worker
        return worker

    def wait_ready(self, worker: Worker) -> None:
        path = self.workdir / f"worker-{worker.slot}-{worker.generation}.log"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while b"READY" not in path.read_bytes():
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker {worker.executor_id} exited at start:\n{path.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {worker.executor_id} not ready after {READY_TIMEOUT_S} s")
            time.sleep(0.02)

    def start_workers(self) -> None:
        for slot in range(WORKERS):
            self.spawn(slot, f"chaos-{slot}")
        for worker in list(self.workers.values()):
            self.wait_ready(worker)

    def open_runs(self, worker: Worker) -> int:
        """Runs the worker has started and not finished, from its runs-<pid>.txt."""
        path = self.workdir / f"runs-{worker.proc.pid}.txt"
        if not path.exists():
            return 0
        open_ids: set[str] = set()
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                (open_ids.add if parts[0] == "start" else open_ids.discard)(parts[1])
        return len(open_ids)

    def pick_busy(self, deadline: float) -> int | None:
        """A seeded choice among the workers running a workflow now. With the global limit below
        workers x per-worker limit one worker can sit idle, and killing it would exercise no
        recovery path; so wait (to the deadline) until some worker is busy."""
        while time.monotonic() < deadline and not self._stop_faults.is_set():
            busy = [slot for slot, w in sorted(self.workers.items()) if self.open_runs(w) > 0]
            if busy:
                return self.rng.choice(busy)
            self._stop_faults.wait(0.05)
        return None

    def kill_and_restart(self, slot: int, same_id: bool) -> None:
        old = self.workers[slot]
        self.wait_ready(old)  # every kill hits a process that was serving
        t = time.time()
        old.proc.send_signal(signal.SIGKILL)
        old.proc.wait()
        self.dead.append((old.proc.pid, t))
        executor_id = old.executor_id if same_id else f"chaos-{slot}-g{self._generation + 1}"
        if same_id:
            self.report.kills_same_id += 1
        else:
            self.report.kills_adopt += 1
        self.spawn(slot, executor_id)  # not waited for: the next fault may come while it starts

    def stop_workers(self) -> None:
        (self.workdir / "stop").touch()
        for worker in self.workers.values():
            try:
                worker.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()

    # -- faults -------------------------------------------------------------------------------
    def _faults(self, max_kills: int | None, deadline: float, restart_every: int) -> None:
        """Kill a random worker after a random pause; even kills restart with the same executor id,
        odd ones with a new one. Every ``restart_every`` kills the server restarts (if it can)."""
        kills = 0
        try:
            while not self._stop_faults.is_set() and time.monotonic() < deadline:
                if max_kills is not None and kills >= max_kills:
                    return
                if self._stop_faults.wait(self.rng.uniform(*self.pause_s)):
                    return
                for worker in self.workers.values():
                    self.wait_ready(worker)  # a restarted worker counts as busy only once it serves
                slot = self.pick_busy(deadline)
                if slot is None:
                    return
                self.report.faults_at_done.append(self._done_count())
                self.kill_and_restart(slot, same_id=kills % 2 == 0)
                kills += 1
                if self.restart_server is not None and kills % restart_every == restart_every // 2:
                    self.restart_server()
                    self.report.server_restarts += 1
        except BaseException as exc:  # reported by the main thread
            self._fault_error = exc

    # -- load ---------------------------------------------------------------------------------
    def enqueue(self, start: int, count: int) -> list[str]:
        ids = []
        for i in range(start, start + count):
            handle = self.client.enqueue({"workflow_name": "chaos", "queue_name": "chaos"}, i)
            wid = handle.workflow_id
            self.wids[wid] = i
            for suffix in ("a", "b"):
                self.client.send(wid, f"m{i}-{suffix}", "chaos", idempotency_key=f"{wid}-{suffix}")
            ids.append(wid)
        return ids

    def wait_done(self, ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for wid in ids:
            left = deadline - time.monotonic()
            if self._fault_error is not None:
                raise AssertionError(f"the fault thread failed: {self._fault_error!r}")
            try:
                self.client.retrieve_workflow(wid).get_result(timeout=max(left, 0.1))
            except TimeoutError:
                raise AssertionError(f"workflow {wid} not finished within {timeout} s: {self.diagnose()}") from None
            except Exception as exc:
                self.report.problems.append(f"{wid} failed: {exc!r}")

    def _done_count(self) -> int:
        row = self.client.store.read(
            lambda tx: tx.one(
                "SELECT count(*) FROM workflow_status WHERE name = ? AND status = ?", ("chaos", "SUCCESS")
            )
        )
        return int(row[0]) if row else 0

    def diagnose(self) -> str:
        rows = self.client.store.read(
            lambda tx: tx.all("SELECT status, executor_id, count(*) FROM workflow_status GROUP BY status, executor_id")
        )
        alive = {w.executor_id: w.proc.poll() is None for w in self.workers.values()}
        return f"rows by status/owner: {rows}; workers alive: {alive}"

    def run(
        self,
        *,
        batch: int,
        waves: int | None = None,
        fault_seconds: float = 1e9,
        max_kills: int | None = None,
        restart_every: int = 4,
        timeout: float = 120.0,
    ) -> Report:
        """Enqueue waves of ``batch`` workflows (``waves`` of them, or until ``fault_seconds`` have
        passed) while the fault thread works, then stop faults, let everything finish and verify."""
        t0 = time.monotonic()
        self.start_workers()
        faults = threading.Thread(
            target=self._faults, args=(max_kills, t0 + fault_seconds, restart_every), name="chaos-faults", daemon=True
        )
        faults.start()
        ids: list[str] = []
        try:
            wave = 0
            while (waves is None and time.monotonic() < t0 + fault_seconds) or (waves is not None and wave < waves):
                new = self.enqueue(len(ids), batch)
                ids += new
                self.wait_done(new, timeout)
                wave += 1
            if max_kills is not None:  # the short form waits for its whole fault schedule
                faults.join(timeout)
            self._stop_faults.set()
            faults.join(timeout)
            if self._fault_error is not None:
                raise AssertionError(f"the fault thread failed: {self._fault_error!r}")
            self.wait_done(ids, timeout)
            self.report.seconds = time.monotonic() - t0
            self.report.workflows = len(ids)
            self.verify(ids)
        finally:
            self._stop_faults.set()
            self.stop_workers()
            self.client.destroy()
        return self.report

    # -- checks -------------------------------------------------------------------------------
    def verify(self, ids: list[str]) -> None:
        problems = self.report.problems
        store = self.client.store
        for wid in ids:
            i = self.wids[wid]
            status = self.client.get_workflow_status(wid)
            if status is None or status.status != "SUCCESS":
                problems.append(f"{wid}: status {status.status if status else 'MISSING'}")
                continue
            result = self.client.retrieve_workflow(wid).get_result()
            if result != expected_result(i):
                problems.append(f"{wid}: result {result!r} != {expected_result(i)!r}")
            if self.client.get_event(wid, "result", timeout_seconds=0) != expected_result(i):
                problems.append(f"{wid}: event 'result' wrong")
        # Each transaction's effect exactly once.
        counts = Counter(k for (k,) in _app_query(self.app_url, "SELECT k FROM chaos_effects"))
        for wid in ids:
            for tx in (1, 2):
                n = counts.pop(f"{wid}:{tx}", 0)
                if n != 1:
                    problems.append(f"{wid}: transaction {tx} took effect {n} times")
        if counts:
            problems.append(f"unexpected application rows: {dict(counts)}")
        # Each message received exactly once: both consumed (kept as keyed tombstones), none unread.
        consumed = Counter(
            dest
            for (dest,) in store.read(
                lambda tx: tx.all("SELECT destination_id FROM notifications WHERE consumed_at IS NOT NULL")
            )
        )
        unread = store.read(lambda tx: tx.all("SELECT destination_id FROM notifications WHERE consumed_at IS NULL"))
        if unread:
            problems.append(f"{len(unread)} messages never received, e.g. {unread[:3]}")
        for wid in ids:
            if consumed[wid] != 2:
                problems.append(f"{wid}: {consumed[wid]} of 2 messages consumed")
        # Nothing left PENDING / ENQUEUED, nobody owning unfinished work.
        leftovers = store.read(
            lambda tx: tx.all(
                "SELECT workflow_id, status, executor_id FROM workflow_status WHERE status IN ('PENDING', 'ENQUEUED')"
            )
        )
        if leftovers:
            problems.append(f"{len(leftovers)} unfinished rows, e.g. {leftovers[:3]}")
        self.check_concurrency()

    def check_concurrency(self) -> None:
        """Max overlap of workflow runs, from the runs-<pid>.txt lines; a killed process's open runs
        end at its kill."""
        killed = dict(self.dead)
        events: list[tuple[float, int, int]] = []  # (time, +1/-1, pid)
        starts: list[tuple[float, str, str]] = []  # (time, workflow id, executor id)
        runs = 0
        for path in self.workdir.glob("runs-*.txt"):
            pid = int(path.stem.split("-")[1])
            open_runs: dict[str, float] = {}
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) != 4:
                    continue  # a line torn by SIGKILL
                kind, wid, t = parts[0], parts[1], float(parts[2])
                if kind == "start":
                    open_runs[wid] = t
                    starts.append((t, wid, parts[3]))
                    runs += 1
                elif wid in open_runs:
                    events += [(open_runs.pop(wid), 1, pid), (t, -1, pid)]
            for started in open_runs.values():
                end = killed.get(pid)
                if end is None:
                    self.report.problems.append(f"a run in live process {pid} never ended")
                    continue
                events += [(started, 1, pid), (max(end, started), -1, pid)]
        events.sort(key=lambda e: (e[0], e[1]))  # at equal times, ends before starts
        total, per_pid, best, best_pid = 0, Counter[int](), 0, 0
        for _, delta, pid in events:
            total += delta
            per_pid[pid] += delta
            best, best_pid = max(best, total), max(best_pid, per_pid[pid])
        self.report.runs = runs
        # Which recovery path resumed each interrupted run: its own executor id restarted, or another.
        last_executor: dict[str, str] = {}
        for _, wid, executor in sorted(starts):
            before = last_executor.get(wid)
            if before is not None:
                if before == executor:
                    self.report.resumed_same_id += 1
                else:
                    self.report.resumed_adopted += 1
            last_executor[wid] = executor
        self.report.max_global_overlap, self.report.max_worker_overlap = best, best_pid
        if best > QUEUE["concurrency"]:
            self.report.problems.append(f"global concurrency limit exceeded: {best} > {QUEUE['concurrency']}")
        if best_pid > QUEUE["worker_concurrency"]:
            self.report.problems.append(
                f"per-process concurrency limit exceeded: {best_pid} > {QUEUE['worker_concurrency']}"
            )


# -- the long form --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chaos run: random SIGKILLs (and Postgres restarts) under load.")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    failed = False
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        workdir = Path(tempfile.mkdtemp(prefix=f"transact-chaos-{db}-"))
        server: PrivatePostgres | None = None
        try:
            if db == "sqlite":
                sys_url, app_url = f"sqlite:///{workdir / 'system.sqlite'}", f"sqlite:///{workdir / 'app.sqlite'}"
            else:
                server = PrivatePostgres()
                sys_url, app_url = server.create_database("chaos_sys"), server.create_database("chaos_app")
            chaos = Chaos(sys_url, app_url, workdir, seed=args.seed, restart_server=server.restart if server else None)
            print(f"[{db}] chaos for {args.minutes} min, seed {args.seed}, workdir {workdir}", flush=True)
            report = chaos.run(batch=args.batch, fault_seconds=args.minutes * 60, restart_every=10, timeout=600)
            print(f"[{db}] {report.summary()}", flush=True)
            for problem in report.problems[:50]:
                print(f"[{db}] PROBLEM {problem}", flush=True)
            failed = failed or bool(report.problems)
            if not report.problems:
                shutil.rmtree(workdir, ignore_errors=True)
        finally:
            if server is not None:
                server.stop()
    print("FAILED" if failed else "OK: nothing lost, nothing duplicated, limits held", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

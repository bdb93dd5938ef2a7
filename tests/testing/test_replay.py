"""transact.testing.replay and `transact replay`: recorded runs checked against changed code,
on SQLite and Postgres, with the database left exactly as it was."""

from __future__ import annotations

import importlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import wait_until
from transact import DBOS
from transact.engine.registry import REGISTRY
from transact.errors import ConfigError
from transact.testing import ReplayReport, replay

APPS = "tests.testing.apps"
ROOT = Path(__file__).resolve().parents[2]
TRANSACT = Path(sys.executable).parent / "transact"
RUNS = 50


def _load(variant: str) -> str:
    """Declare the ``order`` workflow from app module ``variant`` (the previous one is forgotten)."""
    REGISTRY.workflows.pop("order", None)
    module = f"{APPS}.replay_{variant}"
    sys.modules.pop(module, None)
    return module


def _snapshot(url: str) -> dict[str, list[str]]:
    """Every row of every table, as text (what replay must leave untouched)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"'))) for n in names}
    with psycopg.connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'transact'")
        ]
        return {n: sorted(map(repr, conn.execute(f'SELECT * FROM transact."{n}"'))) for n in names}


def _record(dbos: type[DBOS], runs: int) -> tuple[dict[int, str], str]:
    """``runs`` finished orders (order n -> workflow id) and one waiter left in flight; then DBOS stops."""
    importlib.import_module(_load("v1"))
    sys.modules.pop(f"{APPS}.replay_waiter", None)  # declared again: the registry is fresh per test
    waiter = importlib.import_module(f"{APPS}.replay_waiter")
    ids: dict[int, str] = {}
    for n in range(runs):
        handle = dbos.start_workflow(sys.modules[f"{APPS}.replay_v1"].order, n)
        assert handle.get_result() == (n * 2 if n % 2 == 0 else n) + 1
        ids[n] = handle.workflow_id
    pending = dbos.start_workflow(waiter.waiter, 7)
    assert dbos.get_event(pending.workflow_id, "ready", timeout_seconds=20) == 7
    wait_until(lambda: len(dbos.list_workflow_steps(pending.workflow_id)) >= 3, what="the waiter's recv deadline")
    dbos.destroy()  # leaves the waiter PENDING: an in-flight run, and nothing else writes from here on
    return ids, pending.workflow_id


def _by_id(report: ReplayReport) -> dict[str, Any]:
    return {r.workflow_id: r for r in report.results}


def test_replay_flags_exactly_the_incompatible_runs(dbos: type[DBOS], db_url: str) -> None:
    ids, in_flight = _record(dbos, RUNS)
    before = _snapshot(db_url)

    unchanged = replay(db_url, app=_load("v1"))
    assert unchanged.ok and len(unchanged.results) == RUNS + 1, unchanged.render()
    assert "in flight" in _by_id(unchanged)[in_flight].detail

    renamed = _by_id(replay(db_url, app=_load("renamed"), name="order"))
    assert len(renamed) == RUNS
    for n, wid in ids.items():
        r = renamed[wid]
        if n % 2:
            assert r.compatible, r.describe()
        else:
            assert (r.compatible, r.position, r.recorded, r.called, r.patchable) == (
                False,
                2,
                "charge",
                "charge_card",
                True,
            )

    reordered = _by_id(replay(db_url, app=_load("reordered"), name="order"))
    for n, wid in ids.items():
        r = reordered[wid]
        assert r.compatible if n % 2 else (r.position, r.recorded, r.called) == (1, "reserve", "charge")

    inserted = _by_id(replay(db_url, app=_load("inserted"), name="order"))
    for n, wid in ids.items():
        r = inserted[wid]
        assert (r.compatible, r.position, r.recorded, r.called, r.patchable) == (
            False,
            3 if n % 2 == 0 else 2,
            "ship",
            "audit",
            True,
        )
        assert "a DBOS.patch here would cover it" in r.detail

    patched = replay(db_url, app=_load("patched"))
    assert patched.ok, patched.render()
    assert len(patched.results) == RUNS + 1

    assert _snapshot(db_url) == before  # strictly read-only


def test_replay_reports_code_that_runs_past_a_finished_record(dbos: type[DBOS], db_url: str) -> None:
    """A finished run has no more positions: a step the code now calls at its end is a divergence
    no patch covers, while an in-flight run's next step is where it left off."""

    @DBOS.step(name="first")
    def first() -> int:
        return 1

    @DBOS.step(name="extra")
    def extra() -> int:
        raise AssertionError("replay must never run a step")

    @DBOS.workflow(name="short")
    def short() -> int:
        return first()

    handle = dbos.start_workflow(short)
    assert handle.get_result() == 1
    wid = handle.workflow_id
    dbos.destroy()
    REGISTRY.workflows.pop("short")

    @DBOS.workflow(name="short")
    def longer() -> int:
        return first() + extra()

    [r] = replay(db_url, name="short").results
    assert (r.compatible, r.position, r.recorded, r.called, r.patchable) == (False, 2, None, "extra", False)
    assert r.workflow_id == wid and "the run had ended" in r.detail


def test_replay_checks_its_arguments(dbos: type[DBOS], db_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="limit"):
        replay(db_url, limit=0)
    with pytest.raises(ConfigError, match="since"):
        replay(db_url, since="yesterday")
    with pytest.raises(ConfigError, match="cannot import"):
        replay(db_url, app="tests.testing.apps.no_such_module")
    with pytest.raises(ConfigError, match="does not exist"):
        replay(f"sqlite:///{tmp_path / 'missing.sqlite'}")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRANSACT), "replay", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_replay_exit_codes(dbos: type[DBOS], db_url: str) -> None:
    ids, _ = _record(dbos, 6)
    before = _snapshot(db_url)

    ok = _cli("--db", db_url, "--app", f"{APPS}.replay_v1", "--name", "order")
    assert ok.returncode == 0, ok.stderr
    assert "6 workflow(s) replayed, 6 compatible, 0 diverge" in ok.stdout

    undeclared = _cli("--db", db_url, "--app", f"{APPS}.replay_v1")  # the in-flight waiter is not in this app
    assert undeclared.returncode == 1
    assert "the code declares no workflow named 'waiter'" in undeclared.stdout

    bad = _cli("--db", db_url, "--app", f"{APPS}.replay_renamed", "--name", "order", "--since", "7d", "--limit", "4")
    assert bad.returncode == 1, bad.stderr
    assert "4 workflow(s) replayed," in bad.stdout
    verdicts = {line.split(" ", 1)[0]: "DIVERGES" in line for line in bad.stdout.splitlines() if "(order," in line}
    # Which four the limit picks depends on ids minted in the same millisecond; each verdict must
    # match its run: the even orders called the renamed step.
    assert len(verdicts) == 4
    assert verdicts == {ids[n]: n % 2 == 0 for n in ids if ids[n] in verdicts}
    assert f"{sum(verdicts.values())} diverge" in bad.stdout
    assert "'charge_card'" in bad.stdout

    wrong = _cli("--db", db_url, "--app", f"{APPS}.replay_v1", "--since", "soon")
    assert wrong.returncode == 1 and "since" in wrong.stderr

    assert _snapshot(db_url) == before
    assert len(ids) == 6

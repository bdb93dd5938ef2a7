"""``transact stats``: the counts /metrics reports, as tables or JSON (a real subprocess)."""

from __future__ import annotations

import pytest

from tests.cli.test_cli import fails, ok_json, run
from transact import DBOS, DBOSClient


def test_stats_counts_workflows_queues_and_executors(dbos: type[DBOS], db_url: str) -> None:
    @DBOS.workflow(name="tally")
    def tally(x: int) -> int:
        return x

    @DBOS.workflow(name="oops")
    def oops() -> None:
        raise ValueError("no")

    for i in range(3):
        tally(i)
    with pytest.raises(ValueError):
        oops()
    with DBOSClient(db_url) as client:  # a queue no process serves: both stay ENQUEUED
        for i in range(2):
            client.enqueue({"workflow_name": "tally", "queue_name": "idle-q"}, i)

    data = ok_json("stats", "--db", db_url)
    assert {(w["status"], w["name"]): w["count"] for w in data["workflows"]} == {
        ("SUCCESS", "tally"): 3,
        ("ERROR", "oops"): 1,
        ("ENQUEUED", "tally"): 2,
    }
    (idle,) = [q for q in data["queues"] if q["queue"] == "idle-q"]
    assert idle["enqueued"] == 2 and idle["running"] == 0 and idle["oldest_enqueued_age_seconds"] >= 0
    assert data["executors"] == {"alive": 1, "dead": 0}

    proc = run("stats", "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    assert "6 workflow(s)" in proc.stdout and "idle-q" in proc.stdout and "tally" in proc.stdout


def test_stats_needs_a_database() -> None:
    fails(run("stats", "--db", "sqlite:////nonexistent/dir/x.sqlite"), "no SQLite database")

"""Chaos, short form: three worker processes serve a limited queue while a seeded schedule SIGKILLs
and restarts them (same executor id, then a new one adopting) and, on Postgres, crashes and
restarts the server once; every promise is then checked (see chaos_harness.verify). The long form
is scripts/chaos.sh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crash.chaos_harness import QUEUE, Chaos, PrivatePostgres, pg_bin_dir

SEED = 23
WORKFLOWS = 200
KILLS = 6  # alternating: restart with the same executor id, then with a new one that adopts


@pytest.fixture
def private_pg(backend: str, tmp_path: Path) -> Iterator[PrivatePostgres | None]:
    """Postgres: a cluster of this test's own, so restarting it disturbs no one else."""
    if backend == "sqlite":
        yield None
        return
    if pg_bin_dir() is None:
        pytest.skip("no Postgres server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin")
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.stop()


def test_chaos_nothing_lost_nothing_twice_limits_hold(
    backend: str, tmp_path: Path, private_pg: PrivatePostgres | None
) -> None:
    if private_pg is None:
        sys_url, app_url = f"sqlite:///{tmp_path / 'system.sqlite'}", f"sqlite:///{tmp_path / 'app.sqlite'}"
    else:
        sys_url, app_url = private_pg.create_database("chaos_sys"), private_pg.create_database("chaos_app")
    chaos = Chaos(
        sys_url,
        app_url,
        tmp_path / "work",
        seed=SEED,
        restart_server=private_pg.restart if private_pg is not None else None,
        pause_s=(0.2, 1.0),
        sleep_s=0.3,
    )
    report = chaos.run(batch=WORKFLOWS, waves=1, max_kills=KILLS, restart_every=KILLS, timeout=50)
    print(report.summary())
    assert report.problems == [], "\n".join(report.problems[:30])
    assert report.workflows == WORKFLOWS
    assert report.kills_same_id == KILLS // 2 and report.kills_adopt == KILLS // 2
    assert report.server_restarts == (0 if private_pg is None else 1)
    assert report.max_global_overlap <= QUEUE["concurrency"]
    assert report.max_worker_overlap <= QUEUE["worker_concurrency"]
    assert report.max_worker_overlap > 1  # the per-process limit was reached for, not idle
    assert report.runs > WORKFLOWS  # killed runs ran again, by both recovery paths:
    assert report.resumed_same_id > 0 and report.resumed_adopted > 0
    assert min(report.faults_at_done) < WORKFLOWS // 2  # the faults hit a busy system

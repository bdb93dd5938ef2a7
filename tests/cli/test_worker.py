"""``transact worker`` as a real subprocess on tests/cli/apps/worker_app.py: it serves the queue,
answers /healthz and /metrics, hands its work over on SIGTERM and exits 0; ``--drain`` exits by
itself once the queue is empty."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from transact import DBOSClient

TRANSACT = Path(sys.executable).parent / "transact"
APPS = Path(__file__).parent / "apps"


def start_worker(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRANSACT_SYSTEM_DATABASE_URL"}
    return subprocess.Popen(
        [str(TRANSACT), "worker", "worker_app", *args],
        cwd=APPS,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_worker_serves_health_metrics_and_hands_over_on_sigterm(
    db_url: str, workers: list[subprocess.Popen[str]]
) -> None:
    first = start_worker("--port", "0", "--db", db_url)
    workers.append(first)
    assert first.stdout is not None
    banner = first.stdout.readline()
    found = re.search(r"http://([\d.]+):(\d+)", banner)
    assert found is not None, banner + (first.stdout.read() if first.poll() is not None else "")
    base = f"http://{found[1]}:{found[2]}"
    assert "'jobs'" in banner

    with DBOSClient(db_url) as client:
        handles = [client.enqueue({"queue_name": "jobs", "workflow_name": "crunch"}, i) for i in range(5)]
        assert [h.get_result() for h in handles] == [1, 3, 5, 7, 9]
        code, body = get(f"{base}/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
        assert "jobs" in json.loads(body)["queues"]
        code, text = get(f"{base}/metrics")
        assert code == 200
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("transact_workflows", (("name", "crunch"), ("status", "SUCCESS")))] == 5
        assert samples[("transact_step_duration_seconds_count", (("name", "double"),))] == 5
        assert samples[("transact_workflow_duration_seconds_count", (("name", "crunch"),))] == 5
        assert samples[("transact_executors", (("state", "alive"),))] == 1
        assert get(f"{base}/nothing")[0] == 404

        held = client.enqueue({"queue_name": "jobs", "workflow_name": "held"})
        wait_until(lambda: client.get_workflow_status(held.workflow_id).status == "PENDING")  # type: ignore[union-attr]
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, first.stdout.read()
        row = client.get_workflow_status(held.workflow_id)
        assert row is not None and row.status == "PENDING" and row.executor_id is None  # handed over

        # A second worker adopts it; once it finishes, the queue is empty and --drain exits by itself.
        client.send(held.workflow_id, "now", "go")
        second = start_worker("--drain", "--db", db_url)
        workers.append(second)
        assert second.wait(timeout=60) == 0, second.stdout.read() if second.stdout else ""
        assert held.get_result() == "got now"
        assert not client.list_queued_workflows(queue_name="jobs")

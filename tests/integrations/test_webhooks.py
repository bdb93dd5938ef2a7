"""Exactly-once webhooks end to end: the example apps (FastAPI under uvicorn, Flask under werkzeug)
run as real servers in subprocesses on 127.0.0.1; the same delivery is posted 5 times, one after
another and concurrently, and must run its workflow once with all 5 responses agreeing."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import spawn
from tests.integrations.conftest import free_port, wait_for_port

EXAMPLES = Path(__file__).parents[2] / "examples"


class Server:
    def __init__(self, script: str, db_url: str, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.proc = spawn(
            EXAMPLES / script,
            "--port",
            str(self.port),
            env={"TRANSACT_SYSTEM_DATABASE_URL": db_url, **env},
            cwd=tmp_path,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        try:
            wait_for_port(self.port, timeout=30)
        except AssertionError:
            self.stop()
            raise

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.base + path, json=body, timeout=30)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # both servers shut down (and destroy DBOS) on SIGINT
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stdout is not None
        return self.proc.stdout.read()


def deliver_five_times(server: Server, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Twice one after another, then three at once (a retry racing the original)."""
    answers = [server.post(path, body) for _ in range(2)]
    with ThreadPoolExecutor(3) as pool:
        answers += list(pool.map(lambda _: server.post(path, body), range(3)))
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    return [a.json() for a in answers]


@pytest.fixture
def fastapi_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    server = Server("fastapi_webhook.py", db_url, tmp_path, LEDGER_PATH=str(tmp_path / "ledger.jsonl"))
    yield server
    output = server.stop()
    assert "Traceback" not in output, output


@pytest.fixture
def flask_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    server = Server("flask_slack.py", db_url, tmp_path, OUTBOX_PATH=str(tmp_path / "outbox.jsonl"))
    yield server
    output = server.stop()
    assert "Traceback" not in output, output


def test_fastapi_payment_webhook_runs_once_per_event(fastapi_server: Server, tmp_path: Path) -> None:
    events = [{"event_id": f"evt_{i}", "type": "payment.succeeded", "amount": 10 * i} for i in (1, 2)]
    for event in events:
        answers = deliver_five_times(fastapi_server, "/webhooks/payments", event)
        assert all(a == answers[0] for a in answers), answers
        assert answers[0]["workflow_id"] == event["event_id"]
        assert answers[0]["amount"] == event["amount"]
    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [entry["amount"] for entry in ledger] == [10, 20], "one ledger entry per event"

    invalid = httpx.post(fastapi_server.base + "/webhooks/payments", json={"event_id": "x"}, timeout=10)
    assert invalid.status_code == 422  # FastAPI's validation, before any workflow starts
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 2


def test_flask_slack_events_reply_once_per_event(flask_server: Server, tmp_path: Path) -> None:
    check = flask_server.post("/slack/events", {"type": "url_verification", "challenge": "c-123"})
    assert check.json() == {"challenge": "c-123"}
    for i in (1, 2):
        body = {
            "type": "event_callback",
            "event_id": f"Ev{i}",
            "event": {"type": "message", "channel": "C1", "text": f"hello {i}"},
        }
        answers = deliver_five_times(flask_server, "/slack/events", body)
        assert answers == [{"ok": True, "event_id": f"Ev{i}"}] * 5
    replies = [httpx.get(f"{flask_server.base}/slack/replies/Ev{i}", timeout=30).json() for i in (1, 2)]
    outbox = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert sorted(m["text"] for m in outbox) == ["You said: hello 1", "You said: hello 2"], "one reply per event"
    assert {r["ts"] for r in replies} == {m["ts"] for m in outbox}
    assert httpx.get(f"{flask_server.base}/slack/replies/Ev9", timeout=10).status_code == 404

"""The console's JSON API over HTTP (httpx against a real server on a free port), on both databases."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from transact import DBOS, DBOSClient, SetWorkflowID
from transact.console.render import MAX_TEXT
from transact.console.server import ConsoleServer

CHANGE = {"X-Transact-Console": "1"}
TRANSACT = Path(sys.executable).parent / "transact"


class Ghost:
    """A class the console process cannot find when its output is shown (the test removes it)."""


@pytest.fixture
def client(dbos: type[DBOS], db_url: str) -> Iterator[DBOSClient]:
    with DBOSClient(db_url) as c:
        yield c


def serve(client: DBOSClient, **kw: Any) -> ConsoleServer:
    server = ConsoleServer(client.store, port=0, **kw)
    server.start()
    return server


@pytest.fixture
def http(client: DBOSClient) -> Iterator[httpx.Client]:
    server = serve(client)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as h:
            yield h
    finally:
        server.stop()


def test_list_filter_page_and_detail(dbos: type[DBOS], http: httpx.Client) -> None:
    @DBOS.step()
    def double(x: int) -> int:
        return x * 2

    @DBOS.workflow(name="doubler")
    def doubler(x: int) -> int:
        DBOS.set_event("seen", x)
        return double(x) + double(x)

    @DBOS.workflow(name="other")
    def other() -> str:
        return "o"

    for i in range(5):
        with SetWorkflowID(f"api-d{i}"):
            doubler(i)
    with SetWorkflowID("api-o"):
        other()

    everything = http.get("/api/workflows").json()
    ids = [w["workflow_id"] for w in everything["workflows"]]
    assert set(ids) == {f"api-d{i}" for i in range(5)} | {"api-o"} and everything["has_more"] is False
    created = [w["created_at"] for w in everything["workflows"]]
    assert created == sorted(created, reverse=True)  # newest first
    assert "input" not in everything["workflows"][0]  # listing decodes no blobs

    page = http.get("/api/workflows", params={"name": "doubler", "limit": 2}).json()
    assert len(page["workflows"]) == 2 and page["has_more"] is True
    rest = http.get("/api/workflows", params={"name": "doubler", "limit": 2, "offset": 4}).json()
    assert len(rest["workflows"]) == 1 and rest["has_more"] is False
    assert [
        w["workflow_id"] for w in http.get("/api/workflows", params={"workflow_id_prefix": "api-o"}).json()["workflows"]
    ] == ["api-o"]
    assert http.get("/api/workflows", params={"status": "ERROR"}).json()["workflows"] == []
    assert len(http.get("/api/workflows", params={"status": "SUCCESS,ERROR"}).json()["workflows"]) == 6
    oldest = http.get("/api/workflows", params={"sort_desc": "false", "limit": 1}).json()["workflows"][0]
    assert oldest["workflow_id"] == "api-d0"
    late = http.get("/api/workflows", params={"start_time": "2999-01-01T00:00:00Z"}).json()
    assert late["workflows"] == []

    detail = http.get("/api/workflows/api-d3").json()
    assert detail["workflow"]["status"] == "SUCCESS" and detail["workflow"]["output"]["text"] == "12"
    assert '"args"' in detail["workflow"]["input"]["text"]
    steps = detail["steps"]
    assert len(steps) == 3 and sum(s["function_name"].endswith("double") for s in steps) == 2
    assert all(s["duration_ms"] is not None and s["duration_ms"] >= 0 for s in steps)
    assert detail["events"]["seen"]["text"] == "3"
    assert set(detail["actions"]) == {"fork", "delete"}


def test_errors_are_json_404_and_400(http: httpx.Client) -> None:
    missing = http.get("/api/workflows/no-such-id")
    assert missing.status_code == 404 and "no-such-id" in missing.json()["error"]
    assert http.post("/api/workflows/no-such-id/cancel", headers=CHANGE).status_code == 404
    assert http.get("/api/nothing-here").status_code == 404 and "error" in http.get("/api/nothing-here").json()
    for params, needle in (
        ({"limit": "x"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"status": "BOGUS"}, "BOGUS"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"colour": "red"}, "colour"),
        ({"sort_desc": "maybe"}, "sort_desc"),
    ):
        answer = http.get("/api/workflows", params=params)
        assert answer.status_code == 400, params
        assert needle in answer.json()["error"]
    bad_body = http.post("/api/workflows/x/fork", headers=CHANGE, content=b"{not json")
    assert bad_body.status_code == 400 and "JSON" in bad_body.json()["error"]
    assert http.put("/api/workflows").status_code == 405


def test_actions_cancel_resume_fork_delete(dbos: type[DBOS], http: httpx.Client) -> None:
    release = threading.Event()
    runs: list[int] = []

    @DBOS.step()
    def numbered(i: int) -> int:
        runs.append(i)
        if i == 2:
            assert release.wait(20)
        return i

    @DBOS.workflow(name="three")
    def three() -> int:
        return numbered(1) + numbered(2) + numbered(3)

    with SetWorkflowID("api-run"):
        DBOS.start_workflow(three)
    wait_until(lambda: 2 in runs, what="step 2 to start")
    assert http.get("/api/workflows/api-run").json()["actions"] == ["resume", "cancel", "fork", "delete"]
    cancelled = http.post("/api/workflows/api-run/cancel", headers=CHANGE)
    assert cancelled.json() == {"workflow_id": "api-run", "status": "CANCELLED"}
    release.set()
    wait_until(lambda: "api-run" not in DBOS._instance()._runtime.runs, what="the cancelled run to stop")

    resumed = http.post("/api/workflows/api-run/resume", headers=CHANGE).json()
    assert resumed["resumed"] is True
    assert DBOS.retrieve_workflow("api-run").get_result(timeout=30) == 6  # this live process adopted it

    forked = http.post("/api/workflows/api-run/fork", headers=CHANGE, json={"start_step": 3}).json()
    assert forked["forked_from"] == "api-run" and forked["start_step"] == 3
    assert DBOS.retrieve_workflow(forked["workflow_id"]).get_result(timeout=30) == 6
    assert runs.count(1) == 1  # steps before 3 reused their outcomes
    bad_step = http.post("/api/workflows/api-run/fork", headers=CHANGE, json={"start_step": "two"})
    assert bad_step.status_code == 400 and "start_step" in bad_step.json()["error"]

    assert http.delete(f"/api/workflows/{forked['workflow_id']}", headers=CHANGE).json()["deleted"] == [
        forked["workflow_id"]
    ]
    assert http.post("/api/workflows/api-run/delete", headers=CHANGE).status_code == 200
    assert http.get("/api/workflows/api-run").status_code == 404


def test_cross_site_requests_are_refused(dbos: type[DBOS], http: httpx.Client) -> None:
    @DBOS.workflow(name="w")
    def w() -> int:
        return 1

    with SetWorkflowID("api-csrf"):
        w()
    url = "/api/workflows/api-csrf/delete"
    no_header = http.post(url)
    assert no_header.status_code == 403 and "X-Transact-Console" in no_header.json()["error"]
    other_origin = http.post(url, headers={**CHANGE, "Origin": "http://evil.example"})
    assert other_origin.status_code == 403 and "Origin" in other_origin.json()["error"]
    cross_site = http.post(url, headers={**CHANGE, "Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    rebound = http.get("/api/workflows", headers={"Host": "attacker.example:8321"})
    assert rebound.status_code == 403  # DNS rebinding onto a loopback console
    assert http.get("/api/workflows/api-csrf").status_code == 200  # nothing was deleted
    host = httpx.URL(str(http.base_url)).netloc.decode()
    same = http.post(url, headers={**CHANGE, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200


def test_undecodable_and_huge_values_are_placeholders(
    dbos: type[DBOS], http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    @DBOS.step()
    def ghost() -> Ghost:
        return Ghost()

    @DBOS.workflow(name="odd")
    def odd() -> str:
        ghost()
        return "x" * 100_000

    with SetWorkflowID("api-odd"):
        odd()
    monkeypatch.delattr(sys.modules[__name__], "Ghost")  # as if the class was renamed since
    answer = http.get("/api/workflows/api-odd")
    assert answer.status_code == 200
    body = answer.json()
    step = body["steps"][0]["output"]
    assert step["undecodable"] is True and step["text"].startswith("<undecodable: AttributeError")
    output = body["workflow"]["output"]
    assert output["truncated"] is True and len(output["text"]) <= MAX_TEXT + 1 and output["bytes"] > 100_000
    assert http.get("/api/workflows").status_code == 200


def test_read_only_and_token_modes(dbos: type[DBOS], client: DBOSClient) -> None:
    @DBOS.workflow(name="w")
    def w() -> int:
        return 1

    with SetWorkflowID("api-mode"):
        w()
    server = serve(client, read_only=True)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as h:
            assert h.get("/api/config").json()["read_only"] is True
            assert h.get("/api/workflows/api-mode").json()["actions"] == []
            refused = h.post("/api/workflows/api-mode/delete", headers=CHANGE)
            assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    finally:
        server.stop()

    server = serve(client, token="s3cret")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as h:
            assert h.get("/").status_code == 200  # the page shell holds no data
            for path in ("/api/workflows", "/api/workflows/api-mode", "/metrics", "/api/queues"):
                assert h.get(path).status_code == 401, path
            assert h.get("/api/workflows", headers={"Authorization": "Bearer wrong"}).status_code == 401
            auth = {"Authorization": "Bearer s3cret"}
            assert h.get("/api/workflows/api-mode", headers=auth).status_code == 200
            assert h.post("/api/workflows/api-mode/delete", headers=auth).status_code == 403  # still needs the header
    finally:
        server.stop()
    with pytest.raises(ValueError, match="--token"):
        ConsoleServer(client.store, host="0.0.0.0", port=0)


def test_other_pages_health_and_metrics(dbos: type[DBOS], http: httpx.Client) -> None:
    DBOS.register_queue("api-q", concurrency=3)
    with DBOSClient(DBOS.config["system_database_url"]) as client:
        client.enqueue({"workflow_name": "later", "queue_name": "api-q", "delay_seconds": 3600})
        client.enqueue({"workflow_name": "nobody", "queue_name": "unserved"})  # no process serves it
    assert http.get("/healthz").json() == {"status": "ok"}
    queues = {q["queue_name"]: q for q in http.get("/api/queues").json()["queues"]}
    assert queues["api-q"]["concurrency"] == 3 and queues["api-q"]["delayed"] == 1
    assert queues["unserved"]["registered"] is False and queues["unserved"]["enqueued"] == 1
    assert queues["unserved"]["oldest_enqueued_at"] is not None
    executors = http.get("/api/executors").json()["executors"]
    assert any(e["alive"] and e["executor_id"] == DBOS._instance()._runtime.executor_id for e in executors)
    assert http.get("/api/schedules").json() == {"schedules": []}
    assert http.get("/api/stranded").json() == {"workflows": []}
    metrics = http.get("/metrics")
    assert metrics.status_code in (200, 404)
    if metrics.status_code == 200:
        assert "transact_" in metrics.text and metrics.headers["content-type"].startswith("text/plain")
    page = http.get("/")
    assert page.status_code == 200 and "app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_in_process_console_port(config: dict[str, Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "console_port": port})
    DBOS.launch()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/workflows", timeout=10).json()["workflows"] == []
    finally:
        DBOS.destroy(destroy_registry=True)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_cli_refuses_a_public_address_without_a_token() -> None:
    proc = subprocess.run(
        [str(TRANSACT), "console", "--host", "0.0.0.0", "--db", "sqlite:///nowhere.sqlite"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "--token" in proc.stderr and "0.0.0.0" in proc.stderr


def test_children_tree_and_streams(dbos: type[DBOS], http: httpx.Client) -> None:
    @DBOS.workflow(name="leaf")
    def leaf(i: int) -> int:
        return i

    @DBOS.workflow(name="middle")
    def middle() -> int:
        with SetWorkflowID("api-leaf"):
            return leaf(1)

    @DBOS.workflow(name="root")
    def root() -> int:
        DBOS.write_stream("progress", {"done": 1})
        DBOS.write_stream("progress", "two")
        DBOS.close_stream("progress")
        with SetWorkflowID("api-middle"):
            return middle()

    with SetWorkflowID("api-root"):
        assert root() == 1
    body = http.get("/api/workflows/api-root").json()
    [child] = body["children"]
    assert child["workflow_id"] == "api-middle" and child["name"] == "middle"
    assert [c["workflow_id"] for c in child["children"]] == ["api-leaf"]
    stream = http.get("/api/workflows/api-root/streams/progress").json()
    assert [v["value"]["text"] for v in stream["values"]] == ['{\n  "done": 1\n}', '"two"'] and stream["closed"]
    assert http.get("/api/workflows/api-root/streams/progress", params={"offset": 1}).json()["values"][0]["offset"] == 1
    assert http.get("/api/workflows/nobody/streams/progress").status_code == 404


def test_cli_serves_until_interrupted(dbos: type[DBOS], db_url: str) -> None:
    @DBOS.workflow(name="w")
    def w() -> int:
        return 1

    with SetWorkflowID("api-cli"):
        w()
    proc = subprocess.Popen(
        [str(TRANSACT), "console", "--db", db_url, "--port", "0", "--read-only"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "read-only" in line, line
        url = line.split(" at ")[1].split()[0]
        with httpx.Client(base_url=url, timeout=10) as h:
            assert h.get("/api/config").json()["read_only"] is True
            assert [r["workflow_id"] for r in h.get("/api/workflows").json()["workflows"]] == ["api-cli"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

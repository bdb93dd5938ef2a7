"""DBOS(fastapi=app) and DBOS(flask=app) (integrations/web.py): FastAPI launches DBOS in its
lifespan (a real uvicorn server on 127.0.0.1); both honour the dbos-idempotency-key header (the
request's first workflow takes it as its id, so a retried request runs it once); an app's own
middleware authenticates with DBOSContextSetAuth."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from flask import Flask, jsonify

from tests.integrations.conftest import free_port
from transact import DBOS, DBOSContextSetAuth, DBOSNotAuthorizedError, SetWorkflowID


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[str] = []

    def add(self, workflow_id: str | None) -> None:
        with self.lock:
            self.runs.append(workflow_id or "")


@pytest.fixture
def fresh(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    DBOS.destroy(destroy_registry=True)
    try:
        yield config
    finally:
        DBOS.destroy(destroy_registry=True)


class Server:
    """uvicorn in a thread, with the app's lifespan on."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(400):
            if self.server.started:
                break
            deadline.wait(0.05)
        assert self.server.started, "uvicorn did not start"
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(20)
        assert not self.thread.is_alive()


def test_fastapi_launches_dbos_and_honours_the_idempotency_key(fresh: dict[str, Any]) -> None:
    counter = Counter()
    own_lifespan: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_lifespan.append("started")
        yield
        own_lifespan.append("stopped")

    app = FastAPI(lifespan=lifespan)

    @DBOS.workflow()
    def pay(amount: int) -> dict[str, Any]:
        counter.add(DBOS.workflow_id)
        return {"workflow_id": DBOS.workflow_id, "amount": amount}

    @DBOS.workflow()
    async def pay_async(amount: int) -> dict[str, Any]:
        counter.add(DBOS.workflow_id)
        return {"workflow_id": DBOS.workflow_id, "amount": amount}

    @app.post("/pay/{amount}")
    def pay_endpoint(amount: int) -> dict[str, Any]:  # sync: runs in FastAPI's thread pool
        return pay(amount)

    @app.post("/pay-async/{amount}")
    async def pay_async_endpoint(amount: int) -> dict[str, Any]:
        return await pay_async(amount)

    DBOS(config=fresh, fastapi=app)
    with pytest.raises(Exception, match="launch"):
        pay(1)  # not launched until the app starts
    with Server(app) as client:
        assert own_lifespan == ["started"]  # the app's own lifespan still runs
        for path in ("/pay/5", "/pay-async/5"):
            key = f"delivery-{path.strip('/').replace('/', '-')}"
            answers = [client.post(path, headers={"dbos-idempotency-key": key}).json() for _ in range(3)]
            assert answers == [{"workflow_id": key, "amount": 5}] * 3
            assert counter.runs.count(key) == 1  # the retried request ran the workflow once
            plain = [client.post(path).json()["workflow_id"] for _ in range(2)]
            assert len(set(plain)) == 2 and key not in plain  # no header: a new workflow each time
    assert own_lifespan == ["started", "stopped"]
    status = DBOS.get_workflow_status("delivery-pay-5")
    assert status is not None and status.status == "SUCCESS"


def test_fastapi_auth_middleware_reaches_protected_workflows(fresh: dict[str, Any]) -> None:
    app = FastAPI()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        user = request.headers.get("x-user")
        roles = [r for r in request.headers.get("x-roles", "").split(",") if r]
        if user is None:
            return await call_next(request)
        with DBOSContextSetAuth(user, roles):
            return await call_next(request)

    @DBOS.required_roles(["admin"])
    @DBOS.workflow()
    def delete_everything() -> dict[str, Any]:
        return {"user": DBOS.authenticated_user, "role": DBOS.assumed_role, "id": DBOS.workflow_id}

    @app.post("/danger")
    def danger() -> Any:
        try:
            return delete_everything()
        except DBOSNotAuthorizedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code or 500)

    DBOS(config=fresh, fastapi=app)
    with Server(app) as client:
        assert client.post("/danger").status_code == 403
        assert client.post("/danger", headers={"x-user": "eve", "x-roles": "guest"}).status_code == 403
        ok = client.post(
            "/danger", headers={"x-user": "root", "x-roles": "user,admin", "dbos-idempotency-key": "purge-1"}
        )
        assert ok.status_code == 200 and ok.json() == {"user": "root", "role": "admin", "id": "purge-1"}
    status = DBOS.get_workflow_status("purge-1")
    assert status is not None
    assert (status.authenticated_user, status.authenticated_roles, status.assumed_role) == (
        "root",
        ["user", "admin"],
        "admin",
    )
    assert [s.workflow_id for s in DBOS.list_workflows()] == ["purge-1"]  # denied calls wrote nothing


def test_flask_honours_the_idempotency_key(fresh: dict[str, Any]) -> None:
    counter = Counter()
    app = Flask(__name__)

    @DBOS.workflow()
    def notify(channel: str) -> str:
        counter.add(DBOS.workflow_id)
        return DBOS.workflow_id or ""

    @app.route("/notify/<channel>", methods=["POST"])
    def notify_view(channel: str) -> Any:
        first = notify(channel)
        second = notify(channel)  # only the request's first workflow takes the key
        return jsonify({"first": first, "second": second})

    DBOS(config=fresh, flask=app)
    DBOS.launch()  # Flask has no lifespan: the app launches DBOS itself, as DBOS documents
    client = app.test_client()
    answers = [client.post("/notify/ops", headers={"dbos-idempotency-key": "slack-1"}).get_json() for _ in range(3)]
    assert {a["first"] for a in answers} == {"slack-1"}
    assert len({a["second"] for a in answers}) == 3 and "slack-1" not in {a["second"] for a in answers}
    assert counter.runs.count("slack-1") == 1
    plain = client.post("/notify/ops").get_json()
    assert plain["first"] != "slack-1"
    with SetWorkflowID("outside"):  # the middleware leaves no key behind for code outside requests
        assert notify("x") == "outside"


def test_missing_web_package_is_named(fresh: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_flask(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "flask":
            raise ImportError("No module named 'flask'")
        return real_import(name, *args, **kwargs)

    app = Flask(__name__)
    monkeypatch.setattr(builtins, "__import__", no_flask)
    with pytest.raises(ImportError, match=r"transact\[web\]"):
        DBOS(config=fresh, flask=app)

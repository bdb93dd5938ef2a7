"""What ``DBOS(fastapi=app)`` and ``DBOS(flask=app)`` set up on a web app.

FastAPI: DBOS launches when the app starts (its lifespan), before the app's own lifespan runs.
Both: a middleware reads the ``dbos-idempotency-key`` request header and makes it the id of the
first workflow the request starts, so a retried request joins that workflow instead of running it
again. Request authentication stays the app's own middleware's job (``DBOSContextSetAuth``).
Imports the facade only; fastapi / flask come from the ``web`` extra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from transact._options import SetWorkflowID

if TYPE_CHECKING:
    from fastapi import FastAPI
    from flask import Flask

IDEMPOTENCY_HEADER = "dbos-idempotency-key"
_ASGI_HEADER = IDEMPOTENCY_HEADER.encode("latin-1")
_WSGI_KEY = "HTTP_" + IDEMPOTENCY_HEADER.upper().replace("-", "_")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Any]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        raise ImportError(
            f"DBOS({module}=app) needs the {module} package: install the web extra, `pip install 'transact[web]'`"
        ) from exc


class IdempotencyMiddleware:
    """ASGI middleware: an HTTP request's ``dbos-idempotency-key`` header becomes the id of the
    first workflow the request starts (``SetWorkflowID`` around the rest of the app)."""

    def __init__(self, app: Asgi) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = None
        if scope.get("type") == "http":
            for name, value in scope.get("headers") or ():
                if name.lower() == _ASGI_HEADER:
                    key = value.decode("latin-1")
                    break
        if not key:
            await self.app(scope, receive, send)
            return
        with SetWorkflowID(key):
            await self.app(scope, receive, send)


class WsgiIdempotencyMiddleware:
    """The same for WSGI (Flask): the view runs inside ``SetWorkflowID(key)``."""

    def __init__(self, app: Wsgi) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        key = environ.get(_WSGI_KEY)
        if not key:
            return self.app(environ, start_response)
        with SetWorkflowID(str(key)):
            return self.app(environ, start_response)


def setup_fastapi(app: FastAPI, *, launch: Callable[[], None]) -> None:
    """Launch DBOS at the app's startup and add the idempotency middleware."""
    _require("fastapi")
    app.add_middleware(IdempotencyMiddleware)
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        launch()  # idempotent: an app that launches DBOS itself is not harmed
        async with inner(application) as state:
            yield state

    app.router.lifespan_context = lifespan


def setup_flask(app: Flask) -> None:
    """Add the idempotency middleware around the app's WSGI callable."""
    _require("flask")
    app.wsgi_app = WsgiIdempotencyMiddleware(app.wsgi_app)  # type: ignore[method-assign]

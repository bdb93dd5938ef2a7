"""DBOS facade: wait for the first of many workflows (``wait_first``) and ``asyncio_wait``.

Delegates to ``engine/waits.py``; here handles become workflow ids and the answer becomes the
caller's own handle objects again. Must not import transact._dbos.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

from transact._facade._base import FacadeBase
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._lib import checks
from transact.engine import waits

H = TypeVar("H")
_HANDLES = (WorkflowHandle, WorkflowHandleAsync)


def handle_ids(handles: Any, api: str, kinds: tuple[type, ...], shown: str) -> list[str]:
    """The workflow ids of ``handles``: a non-empty list (or tuple) of ``kinds`` handles."""
    if not isinstance(handles, list | tuple):
        raise checks.fail(f"{api}: handles", f"a non-empty list of {shown}", handles)
    if not handles:
        raise checks.fail(f"{api}: handles", f"a non-empty list of {shown}", handles)
    for n, handle in enumerate(handles):
        if not isinstance(handle, kinds):
            raise checks.fail(f"{api}: handles[{n}]", f"a {shown} (as returned by start_workflow)", handle)
    return [handle.workflow_id for handle in handles]


def pick(handles: Sequence[H], ids: Sequence[str], workflow_id: str) -> H:
    """The caller's first handle for ``workflow_id``."""
    return handles[list(ids).index(workflow_id)]


class WaitFacade(FacadeBase):
    @classmethod
    def wait_first(
        cls, handles: list[WorkflowHandle[Any]], *, polling_interval_sec: float = 1.0
    ) -> WorkflowHandle[Any]:
        """Wait until any of ``handles`` has finished (succeeded, failed or was cancelled) and return
        that handle (the first to finish, if several have). In a workflow the winner is recorded, so a
        restarted workflow gets the same handle back at once. Completions are pushed;
        ``polling_interval_sec`` only bounds the safety-net re-read."""
        api = "DBOS.wait_first"
        ids = handle_ids(handles, api, _HANDLES, "WorkflowHandle")
        return pick(handles, ids, waits.wait_first(cls._rt(), ids, polling_interval_sec))

    @classmethod
    async def wait_first_async(
        cls, handles: list[WorkflowHandleAsync[Any]], *, polling_interval_sec: float = 1.0
    ) -> WorkflowHandleAsync[Any]:
        """``wait_first`` for async code: waits on the event loop, holding no thread."""
        api = "DBOS.wait_first_async"
        ids = handle_ids(handles, api, _HANDLES, "WorkflowHandleAsync")
        return pick(handles, ids, await waits.wait_first_async(cls._rt(), ids, polling_interval_sec))

    @classmethod
    async def asyncio_wait(
        cls,
        handles: list[WorkflowHandleAsync[Any]],
        *,
        timeout: float | None = None,
        return_when: str = asyncio.ALL_COMPLETED,
        polling_interval_sec: float = 1.0,
    ) -> tuple[set[WorkflowHandleAsync[Any]], set[WorkflowHandleAsync[Any]]]:
        """A durable ``asyncio.wait`` over workflow handles: ``(done, pending)`` sets of the given
        handles once ``return_when`` holds (``asyncio.FIRST_COMPLETED``, ``FIRST_EXCEPTION`` or
        ``ALL_COMPLETED``) or ``timeout`` seconds have passed. In a workflow the deadline and the
        split are recorded, so a restarted workflow gets the same split back at once."""
        api = "DBOS.asyncio_wait"
        ids = handle_ids(handles, api, _HANDLES, "WorkflowHandleAsync")
        finished = set(
            await waits.asyncio_wait(
                cls._rt(), ids, timeout=timeout, return_when=return_when, polling_interval_sec=polling_interval_sec
            )
        )
        done = {h for h, i in zip(handles, ids, strict=True) if i in finished}
        return done, {h for h in handles if h not in done}

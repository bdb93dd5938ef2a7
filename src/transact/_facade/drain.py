"""DBOS facade: ``drain_queues`` (+ async), delegating to engine/drain.py."""

from __future__ import annotations

from transact._facade._base import FacadeBase
from transact._lib import checks
from transact.engine import drain


class DrainFacade(FacadeBase):
    @classmethod
    def drain_queues(cls, timeout: float | None = None) -> bool:
        """Block until the queues this process listens to hold no ENQUEUED or PENDING workflow
        (True), or ``timeout`` seconds pass (False). For batch jobs and scale-to-zero workers:
        drain, then ``DBOS.destroy()``."""
        if timeout is not None:
            checks.seconds(timeout, "DBOS.drain_queues timeout")
        return drain.drain(cls._rt(), timeout)

    @classmethod
    async def drain_queues_async(cls, timeout: float | None = None) -> bool:
        if timeout is not None:
            checks.seconds(timeout, "DBOS.drain_queues_async timeout")
        return await drain.drain_async(cls._rt(), timeout)

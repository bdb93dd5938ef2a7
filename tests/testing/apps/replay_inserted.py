"""Replay checker app: an ``audit`` step inserted before ``ship``, without a patch."""

from transact import DBOS


@DBOS.step(name="reserve")
def reserve(n: int) -> int:
    return n


@DBOS.step(name="charge")
def charge(n: int) -> int:
    return n * 2


@DBOS.step(name="audit")
def audit(n: int) -> int:
    return n


@DBOS.step(name="ship")
def ship(n: int) -> int:
    return n + 1


@DBOS.workflow(name="order")
def order(n: int) -> int:
    total = reserve(n)
    if n % 2 == 0:
        total = charge(total)
    total = audit(total)
    return ship(total)

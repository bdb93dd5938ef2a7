"""Replay checker app: ``charge`` moved before ``reserve`` (only even orders ran both)."""

from transact import DBOS


@DBOS.step(name="reserve")
def reserve(n: int) -> int:
    return n


@DBOS.step(name="charge")
def charge(n: int) -> int:
    return n * 2


@DBOS.step(name="ship")
def ship(n: int) -> int:
    return n + 1


@DBOS.workflow(name="order")
def order(n: int) -> int:
    total = n
    if n % 2 == 0:
        total = charge(total)
    total = reserve(total)
    return ship(total)

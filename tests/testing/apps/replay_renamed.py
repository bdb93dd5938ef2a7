"""Replay checker app: the ``charge`` step renamed (only even orders ran it)."""

from transact import DBOS


@DBOS.step(name="reserve")
def reserve(n: int) -> int:
    return n


@DBOS.step(name="charge_card")
def charge_card(n: int) -> int:
    return n * 2


@DBOS.step(name="ship")
def ship(n: int) -> int:
    return n + 1


@DBOS.workflow(name="order")
def order(n: int) -> int:
    total = reserve(n)
    if n % 2 == 0:
        total = charge_card(total)
    return ship(total)

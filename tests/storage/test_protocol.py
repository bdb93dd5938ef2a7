"""The storage contract itself: both drivers implement every protocol method with the same
signature, every public store method belongs to a protocol, and no shared module asks which
database it is on."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from transact.storage import protocol
from transact.storage.dialect import DialectSql
from transact.storage.postgres import PostgresStore
from transact.storage.sqlite import SqliteStore

DRIVERS = [SqliteStore, PostgresStore]
# Public, but below the contract: the unit-of-work primitives the mixins (and storage tests) use,
# the list query text behind workflows_explain, and the CLI's optional Postgres connect probe.
BELOW_CONTRACT = {"read", "write", "write_grouped", "count_round_trip", "list_sql", "connect_once", "sql"}
STORAGE = Path(protocol.__file__).parent
DIALECT_MODULES = {"sqlite.py", "postgres.py", "sqlite_sql.py", "postgres_sql.py"}


def members(proto: type) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in vars(proto).items():
        if not name.startswith("_") and (callable(value) or isinstance(value, property)):
            out[name] = value
    for name in vars(proto).get("__annotations__", {}):
        out.setdefault(name, None)
    return out


@pytest.fixture(params=DRIVERS, ids=lambda d: d.__name__)
def unopened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A driver instance that has not connected (instance attributes are part of the contract)."""
    if request.param is SqliteStore:
        instance: Any = SqliteStore(str(tmp_path / "unopened.sqlite"))
    else:
        instance = PostgresStore("postgresql://postgres@127.0.0.1:5432/postgres")
    yield instance
    instance.close()


@pytest.mark.parametrize("proto", protocol.CONCERNS, ids=lambda p: p.__name__)
def test_driver_implements_every_method_with_the_same_signature(unopened: Any, proto: type) -> None:
    driver = type(unopened)
    for name, declared in members(proto).items():
        assert hasattr(unopened, name), f"{driver.__name__}.{name}"
        if callable(declared) and not isinstance(declared, property):
            got = inspect.signature(getattr(driver, name))
            want = inspect.signature(declared)
            assert got == want, f"{driver.__name__}.{name}{got} differs from {proto.__name__}.{name}{want}"


def test_system_store_is_every_concern() -> None:
    assert set(protocol.SystemStore.__mro__) >= set(protocol.CONCERNS)
    total = set().union(*(members(p) for p in protocol.CONCERNS))
    assert len(total) == sum(len(members(p)) for p in protocol.CONCERNS), "a name is declared twice"


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_every_public_store_method_is_in_a_protocol(driver: type) -> None:
    declared = set().union(*(members(p) for p in protocol.CONCERNS))
    public = {n for n in dir(driver) if not n.startswith("_")}
    assert public - declared - BELOW_CONTRACT == set()


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_driver_supplies_its_dialects_statements(driver: type) -> None:
    sql = driver.sql
    assert isinstance(sql, DialectSql) and sql.name == driver.dialect
    assert (STORAGE / "migrations" / sql.name).is_dir()


def test_shared_modules_never_branch_on_the_dialect() -> None:
    offenders = [
        str(path.relative_to(STORAGE))
        for path in STORAGE.rglob("*.py")
        if path.name not in DIALECT_MODULES and "dialect ==" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_no_storage_module_grows_past_600_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in STORAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 600} == {}

"""VersionStore conformance (storage/versions.py), run on both drivers."""

from __future__ import annotations

from tests.storage.builders import trips
from transact.storage import Store
from transact.storage.versions import VersionRow


def version(name: str, *, app: str = "app", at: int = 100) -> VersionRow:
    return VersionRow(
        application_name=app, version_name=name, version_id=f"id-{app}-{name}", version_timestamp=at, created_at=at
    )


def test_register_keeps_the_first_row_and_the_latest_is_the_highest_timestamp(store: Store) -> None:
    assert trips(store, lambda: store.version_latest(application_name="app")) == (None, 1)
    assert trips(store, lambda: store.version_register(version("v1", at=100))) == (True, 1)
    assert store.version_register(version("v2", at=200))
    # A relaunch of v1 later does not make it the latest again.
    assert not store.version_register(version("v1", at=300))
    latest = store.version_latest(application_name="app")
    assert latest == version("v2", at=200)
    listed, n = trips(store, lambda: store.version_list(application_name="app"))
    assert n == 1
    assert [v.version_name for v in listed] == ["v2", "v1"]
    assert listed[1].version_timestamp == 100


def test_versions_are_scoped_by_application(store: Store) -> None:
    store.version_register(version("v1", app="billing", at=100))
    store.version_register(version("v1", app="mail", at=50))
    store.version_register(version("v9", app="mail", at=500))
    latest = store.version_latest(application_name="billing")
    assert latest is not None and latest.version_name == "v1"
    assert [v.version_name for v in store.version_list(application_name="billing")] == ["v1"]
    assert [(v.application_name, v.version_name) for v in store.version_list(application_name=None)] == [
        ("mail", "v9"),
        ("billing", "v1"),
        ("mail", "v1"),
    ]


def test_promote_moves_past_every_other_version_even_with_a_clock_behind(store: Store) -> None:
    store.version_register(version("v1", at=100))
    store.version_register(version("v2", at=200))
    store.version_register(version("other", app="peer", at=9_000))
    promoted, n = trips(store, lambda: store.version_promote(application_name="app", version_name="v1", now=150))
    assert n == 1
    assert promoted is not None and promoted.version_timestamp == 201  # now was behind v2
    assert promoted.created_at == 100  # first registration time stays
    latest = store.version_latest(application_name="app")
    assert latest is not None and latest.version_name == "v1"
    again = store.version_promote(application_name="app", version_name="v2", now=10_000)
    assert again is not None and again.version_timestamp == 10_000
    assert store.version_promote(application_name="app", version_name="nope", now=1) is None
    assert store.version_promote(application_name="peer", version_name="v1", now=1) is None  # another app's

"""Application versions through DBOS and DBOSClient (engine/versions.py), on both databases:
registered at launch, listed latest first, promoted (rollback), scoped by application name."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from transact import DBOS, DBOSClient
from transact.errors import ConfigError


def relaunch(config: dict[str, Any], **changes: Any) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, **changes})
    DBOS.launch()


def names(infos: list[Any]) -> list[str]:
    return [v["version_name"] for v in infos]


def test_each_launch_registers_its_version_and_the_newest_is_latest(config: dict[str, Any]) -> None:
    try:
        relaunch(config, application_version="v1")
        first = DBOS.get_latest_application_version()
        assert first is not None and first["version_name"] == "v1"
        assert first["created_at"] == first["version_timestamp"]
        relaunch(config, application_version="v2")
        assert names(DBOS.list_application_versions()) == ["v2", "v1"]
        relaunch(config, application_version="v1")  # an old version relaunched is not promoted
        latest = DBOS.get_latest_application_version()
        assert latest is not None and latest["version_name"] == "v2"
        assert set(latest) == {"version_id", "version_name", "version_timestamp", "created_at"}
    finally:
        DBOS.destroy(destroy_registry=True)


def test_set_latest_rolls_back_and_refuses_unknown_versions(config: dict[str, Any]) -> None:
    try:
        relaunch(config, application_version="v1")
        relaunch(config, application_version="v2")
        promoted = DBOS.set_latest_application_version("v1")
        assert promoted["version_name"] == "v1"
        assert names(DBOS.list_application_versions()) == ["v1", "v2"]
        with pytest.raises(ConfigError, match=r"\['v1', 'v2'\].*got 'v3'"):
            DBOS.set_latest_application_version("v3")
        with pytest.raises(ConfigError, match="non-empty string"):
            DBOS.set_latest_application_version("")  # type: ignore[arg-type]

        async def twins() -> None:
            await DBOS.set_latest_application_version_async("v2")
            latest = await DBOS.get_latest_application_version_async()
            assert latest is not None and latest["version_name"] == "v2"
            assert names(await DBOS.list_application_versions_async()) == ["v2", "v1"]

        asyncio.run(twins())
    finally:
        DBOS.destroy(destroy_registry=True)


def test_applications_sharing_a_database_keep_their_own_versions(config: dict[str, Any], db_url: str) -> None:
    try:
        relaunch(config, name="billing", application_version="b1")
        relaunch(config, name="mail", application_version="m1")
        relaunch(config, name="mail", application_version="m2")
        assert names(DBOS.list_application_versions()) == ["m2", "m1"]
        relaunch(config, name="billing", application_version="b1")
        latest = DBOS.get_latest_application_version()
        assert latest is not None and latest["version_name"] == "b1"  # mail's newer deploys do not count
        with pytest.raises(ConfigError, match="'m1'"):
            DBOS.set_latest_application_version("m1")  # another application's version
    finally:
        DBOS.destroy(destroy_registry=True)
    with DBOSClient(db_url, application_name="mail") as client:
        assert names(client.list_application_versions()) == ["m2", "m1"]
        assert client.set_latest_application_version("m1")["version_name"] == "m1"
        latest = client.get_latest_application_version()
        assert latest is not None and latest["version_name"] == "m1"
    with DBOSClient(db_url) as client, pytest.raises(ConfigError, match=r"several applications.*billing.*mail"):
        client.list_application_versions()


def test_client_without_a_name_acts_for_the_only_application(config: dict[str, Any], db_url: str) -> None:
    with DBOSClient(db_url) as client:
        assert client.list_application_versions() == []
        assert client.get_latest_application_version() is None
    try:
        relaunch(config, application_version="v1")
        relaunch(config, application_version="v2")
    finally:
        DBOS.destroy(destroy_registry=True)
    with DBOSClient(db_url) as client:

        async def twins() -> None:
            assert names(await client.list_application_versions_async()) == ["v2", "v1"]
            await client.set_latest_application_version_async("v1")
            latest = await client.get_latest_application_version_async()
            assert latest is not None and latest["version_name"] == "v1"

        asyncio.run(twins())

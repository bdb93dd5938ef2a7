"""``transact._lib.urls``: URL kinds, redaction, SQLite paths and libpq conninfo."""

from __future__ import annotations

import os

import pytest

from transact._lib.urls import kind_of, postgres_conninfo, redact, sqlite_path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://alice:s3cret@db.example:5432/app", "postgresql://alice:***@db.example:5432/app"),
        ("postgres://bob:pw@localhost/x", "postgres://bob:***@localhost/x"),
        ("postgresql+psycopg://u:hunter2@h:1/d", "postgresql+psycopg://u:***@h:1/d"),
        ("postgresql://alice@db.example/app", "postgresql://alice@db.example/app"),
        ("postgresql://alice:@db.example/app", "postgresql://alice:***@db.example/app"),
    ],
)
def test_redact_hides_password(url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize("password", ["s3cret", "hunter2", "p4ss-word_X"])
def test_redact_never_shows_password(password: str) -> None:
    out = redact(f"postgresql://user:{password}@host:5432/db")
    assert password not in out
    assert "user" in out and "host:5432/db" in out


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///tmp/x.sqlite",
        "sqlite:///~/data/app.sqlite",
        "postgresql://localhost:5432/app",
        "postgres://db/app",
        "not a url",
        "",
    ],
)
def test_redact_leaves_urls_without_credentials_unchanged(url: str) -> None:
    assert redact(url) == url


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///tmp/app.sqlite", "sqlite"),
        ("sqlite:///~/app.sqlite", "sqlite"),
        ("postgresql://u:p@h:5432/d", "postgres"),
        ("postgres://u:p@h/d", "postgres"),
        ("postgresql+psycopg://u:p@h/d", "postgres"),
        ("postgresql+psycopg2://u:p@h/d", "postgres"),
    ],
)
def test_kind_of(url: str, kind: str) -> None:
    assert kind_of(url) == kind


@pytest.mark.parametrize(
    "url",
    ["mysql://u:secret@h/db", "sqlite://relative.sqlite", "http://u:secret@h/", "secret", "oracle://u:secret@h/db"],
)
def test_kind_of_unsupported_names_both_forms_and_hides_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        kind_of(url)
    message = str(info.value)
    assert "sqlite:///" in message
    assert "postgresql://" in message
    if "@" in url:
        assert "secret" not in message
        assert "***" in message


def test_kind_of_mysql_message() -> None:
    with pytest.raises(ValueError, match="unsupported database URL") as info:
        kind_of("mysql://u:secret@h/db")
    assert "secret" not in str(info.value)
    assert "mysql://u:***@h/db" in str(info.value)


def test_sqlite_path_plain() -> None:
    assert sqlite_path("sqlite:///tmp/app.sqlite") == "tmp/app.sqlite"
    assert sqlite_path("sqlite:////abs/app.sqlite") == "/abs/app.sqlite"


def test_sqlite_path_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    got = sqlite_path("sqlite:///~/data/app.sqlite")
    assert "~" not in got
    assert got == os.path.join(str(tmp_path), "data", "app.sqlite")
    assert got == os.path.expanduser("~/data/app.sqlite")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:p@h:5432/d", "postgresql://u:p@h:5432/d"),
        ("postgresql+psycopg2://u:p@h:5432/d", "postgresql://u:p@h:5432/d"),
        ("postgresql://u:p@h:5432/d", "postgresql://u:p@h:5432/d"),
        ("postgres://u:p@h/d", "postgres://u:p@h/d"),
    ],
)
def test_postgres_conninfo_strips_driver_suffix(url: str, expected: str) -> None:
    assert postgres_conninfo(url) == expected

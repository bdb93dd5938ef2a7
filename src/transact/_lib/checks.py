"""Argument checks with one error policy: a bad argument raises ``ConfigError`` (both a
``ValueError`` and a ``TypeError``) at the call site, saying where, which argument, what it must
be and what was given, before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from transact.errors import ConfigError

MAX_NAME_CHARS = 2000  # ids, topics and keys travel in NOTIFY payloads (at most 8000 bytes)


def fail(what: str, must: str, value: object) -> ConfigError:
    return ConfigError(f"{what} must be {must}, got {value!r}")


def flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise fail(what, "True or False", value)
    return value


def count(value: object, what: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An int in ``[minimum, maximum]`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise fail(what, f"an int >= {minimum}{bound}", value)
    return value


def optional_count(value: object, what: str, *, minimum: int = 0) -> int | None:
    return None if value is None else count(value, what, minimum=minimum)


def seconds(value: object, what: str, *, positive: bool = False) -> float:
    """A finite number of seconds, >= 0 (or > 0 when ``positive``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or math.isinf(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise fail(what, "a finite number of seconds " + ("> 0" if positive else ">= 0"), value)
    return float(value)


def text(value: object, what: str, *, optional: bool = False, bounded: bool = False) -> str | None:
    """A non-empty string (or None when ``optional``); ``bounded`` (ids, topics, keys): at most
    MAX_NAME_CHARS, one line, no NUL."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise fail(what, "a non-empty string" + (" or None" if optional else ""), value)
    if bounded:
        if len(value) > MAX_NAME_CHARS:
            raise ConfigError(f"{what} is {len(value)} characters long; use at most {MAX_NAME_CHARS}")
        if "\x00" in value:  # Postgres text cannot hold it; SQLite would cut the value short in places
            raise ConfigError(f"{what} contains a NUL character, got {value!r}; remove it")
        if "\n" in value or "\r" in value:  # ids, topics and keys are one line in logs, tables and hints
            raise ConfigError(f"{what} contains a line break, got {value!r}; use a one-line string")
    return value


def strings(value: object, what: str) -> list[str] | None:
    """One string or a list of strings, as a list (None stays None)."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Sequence | set | frozenset) or not all(isinstance(v, str) for v in values):
        raise fail(what, "a string or a list of strings", value)
    return [str(v) for v in values]

"""Argument checks: one error type (a ValueError and a TypeError), naming the argument and the rule."""

from __future__ import annotations

import math

import pytest

from transact._lib import checks
from transact.errors import ConfigError


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: checks.flag(1, "x"), "x must be True or False, got 1"),
        (lambda: checks.count(True, "n"), "n must be an int >= 0, got True"),
        (lambda: checks.count(5, "p", maximum=3), "p must be an int >= 0 and <= 3, got 5"),
        (lambda: checks.count(0, "c", minimum=1), "c must be an int >= 1, got 0"),
        (lambda: checks.seconds(math.nan, "t"), "t must be a finite number of seconds >= 0, got nan"),
        (lambda: checks.seconds(0, "t", positive=True), "t must be a finite number of seconds > 0, got 0"),
        (lambda: checks.text("", "name"), "name must be a non-empty string, got ''"),
        (lambda: checks.text(3, "key", optional=True), "key must be a non-empty string or None, got 3"),
        (lambda: checks.text("x" * 2001, "topic", bounded=True), "topic is 2001 characters long; use at most 2000"),
        (lambda: checks.strings([1], "status"), "status must be a string or a list of strings, got [1]"),
    ],
)
def test_bad_arguments_raise_one_error_type_that_says_what_is_wrong(call: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        call()  # type: ignore[operator]
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError)


def test_good_arguments_come_back_normalised() -> None:
    assert checks.flag(True, "x") is True
    assert checks.count(3, "n", minimum=1, maximum=3) == 3
    assert checks.optional_count(None, "n") is None
    assert checks.seconds(2, "t") == 2.0
    assert checks.text(None, "k", optional=True) is None
    assert checks.strings("a", "s") == ["a"] and checks.strings(("a", "b"), "s") == ["a", "b"]
    assert checks.strings(None, "s") is None

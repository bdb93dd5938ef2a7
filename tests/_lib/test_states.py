"""``transact._lib.states``: str enums that behave as their text, and agree with the Postgres triggers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import transact.models
from transact._lib.states import QUEUED, TERMINAL, Hint, Status

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "transact" / "storage" / "migrations" / "postgres"
NOTIFY_KIND = re.compile(r"pg_notify\(\s*'transact'\s*,\s*'([^'|]*)\|")


def test_hint_member_and_text_are_the_same_dict_key() -> None:
    assert {("done", "w", ""): 1}[(Hint.DONE, "w", "")] == 1
    assert {(Hint.DONE, "w", ""): 1}[("done", "w", "")] == 1
    assert {"msg": 2}[Hint.MESSAGE] == 2
    assert {Hint.ALL: 3}["*"] == 3


def test_hint_member_and_text_are_the_same_set_member() -> None:
    assert Hint.QUEUE in {"queue"}
    assert "queue" in {Hint.QUEUE}
    assert ("event", "wf", "k") in {(Hint.EVENT, "wf", "k")}
    assert len({Hint.STREAM, "stream"}) == 1


@pytest.mark.parametrize("member", list(Hint) + list(Status))
def test_every_member_hashes_and_compares_as_its_text(member: Hint | Status) -> None:
    assert member == member.value
    assert hash(member) == hash(member.value)
    assert {member.value: True}[member]
    assert member in {member.value}


def test_status_member_and_text_are_the_same_key() -> None:
    assert {"SUCCESS": 1}[Status.SUCCESS] == 1
    assert {Status.PENDING: 1}["PENDING"] == 1
    assert "ERROR" in {Status.ERROR}


@pytest.mark.parametrize("member", list(Hint) + list(Status))
def test_str_and_fstring_give_the_value(member: Hint | Status) -> None:
    assert str(member) == member.value
    assert f"{member}" == member.value
    assert f"{member}|id|" == f"{member.value}|id|"


def test_str_examples() -> None:
    assert str(Hint.MESSAGE) == "msg"
    assert f"{Status.CANCELLED}" == "CANCELLED"
    assert "|".join([Hint.DONE, "w", ""]) == "done|w|"


def test_status_is_the_public_workflow_status_string() -> None:
    assert transact.models.WorkflowStatusString is Status


def test_terminal_has_the_four_terminal_statuses() -> None:
    assert frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}) == TERMINAL
    assert len(TERMINAL) == 4
    for status in (Status.ENQUEUED, Status.PENDING, Status.DELAYED):
        assert status not in TERMINAL
        assert status in QUEUED
    assert not set(QUEUED) & TERMINAL


def _trigger_kinds() -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for kind in NOTIFY_KIND.findall(line):
                kinds.setdefault(kind, []).append(f"{path.name}:{lineno}")
    return kinds


def test_trigger_sql_emits_notifications() -> None:
    # guard: the regex still finds the triggers, so the drift check below is not vacuous
    assert MIGRATIONS.is_dir(), MIGRATIONS
    kinds = _trigger_kinds()
    assert kinds, f"no pg_notify('transact', '<kind>|...') found in {MIGRATIONS}"
    assert {"msg", "event", "stream", "queue", "done"} <= set(kinds)


def test_every_trigger_hint_kind_is_a_hint_value() -> None:
    values = {h.value for h in Hint}
    unknown = {kind: where for kind, where in _trigger_kinds().items() if kind not in values}
    assert not unknown, f"trigger SQL emits hint kinds missing from Hint: {unknown}"
    for kind in _trigger_kinds():
        assert Hint(kind) == kind

"""The ``transact`` command line (issue 7)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("the transact CLI is not built yet")

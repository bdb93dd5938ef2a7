"""Transact benchmark suite: run with ``bash scripts/bench.sh`` (see bench/README.md)."""

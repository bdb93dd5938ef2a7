#!/usr/bin/env bash
# The whole test suite, as CI runs it: venv + install, Postgres up, lint, types, tests (SQLite and Postgres).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_postgres
ruff check src tests
ruff format --check src tests
mypy
python -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# The whole test suite, as CI runs it: venv + install, Postgres up, lint, types, then the tests on
# SQLite and Postgres. Tests that restart the database (marker "outage") run in a second, lone pass.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_postgres
ensure_chromium
ruff check src tests
ruff format --check src tests
mypy
python -m pytest -q -p no:cacheprovider -m "not outage" "$@"
python -m pytest -q -p no:cacheprovider -m outage "$@"

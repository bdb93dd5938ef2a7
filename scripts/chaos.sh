#!/usr/bin/env bash
# Chaos, long form (tests/crash/chaos_harness.py): workers SIGKILLed and restarted at random for N
# minutes under waves of queued workflows, a private Postgres crashed and restarted now and then;
# then every promise is checked (nothing lost, nothing done twice, limits held, nothing pending).
#   bash scripts/chaos.sh [--minutes N] [--db sqlite|postgres|both] [--seed S] [--batch B]
# Uses the venv the way scripts/bench.sh does ($BENCH_VENV, .venv-bench, the dev .venv, or a new one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${BENCH_VENV:-}"
if [ -z "$venv" ]; then
  if [ -x .venv-bench/bin/python ]; then venv=.venv-bench
  elif [ -x .venv/bin/python ] && .venv/bin/python -c "import transact, sqlalchemy" >/dev/null 2>&1; then venv=.venv
  else venv=.venv-bench
  fi
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv..."
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import transact, sqlalchemy, psycopg" >/dev/null 2>&1; then
  "$venv/bin/pip" install -q --disable-pip-version-check -e . 2>&1 | grep -v "^WARNING: Location" || true
fi

# Postgres runs as a private cluster of its own (initdb + pg_ctl), never the shared server.
exec "$venv/bin/python" -m tests.crash.chaos_harness "$@"

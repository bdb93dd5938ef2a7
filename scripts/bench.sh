#!/usr/bin/env bash
# The benchmark suite (bench/README.md): bash scripts/bench.sh [--db sqlite|postgres|both] [--quick] [--only 1,2]
# Uses $BENCH_VENV, else .venv-bench if present, else the dev .venv if it has transact installed,
# else creates .venv-bench and installs the package into it.
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

if [[ " $* " != *" --db sqlite "* && " $* " != *" --db=sqlite "* ]]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
fi

exec "$venv/bin/python" -m bench.run "$@"

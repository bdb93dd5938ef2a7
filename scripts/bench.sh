#!/usr/bin/env bash
# The benchmark suite (bench/README.md): bash scripts/bench.sh [--db sqlite|postgres|both] [--quick] [--only 1,2]
# Uses $BENCH_VENV, else .venv-bench if present, else the dev .venv if it has transact installed,
# else creates .venv-bench and installs the package into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/_bench_env.sh

if [[ " $* " != *" --db sqlite "* && " $* " != *" --db=sqlite "* ]]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
fi

exec "$venv/bin/python" -m bench.run "$@"

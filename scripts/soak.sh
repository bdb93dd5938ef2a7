#!/usr/bin/env bash
# Soak (bench/soak.py): steady mixed load for N minutes; throughput, p50/p99 step latency and RSS at
# the start and at the end, latency drift and RSS growth (targets: <= 1.2x, <= 10 %).
#   bash scripts/soak.sh [--minutes N] [--db sqlite|postgres|both] [--procs P] [--clients C]
# Uses the venv the way scripts/bench.sh does ($BENCH_VENV, .venv-bench, the dev .venv, or a new one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/_bench_env.sh

if [[ " $* " == *" postgres "* || " $* " == *" both "* || " $* " == *"=postgres "* || " $* " == *"=both "* ]]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
fi

exec "$venv/bin/python" -m bench.soak "$@"

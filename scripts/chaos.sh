#!/usr/bin/env bash
# Chaos, long form (tests/crash/chaos_harness.py): workers SIGKILLed and restarted at random for N
# minutes under waves of queued workflows, a private Postgres crashed and restarted now and then;
# then every promise is checked (nothing lost, nothing done twice, limits held, nothing pending).
#   bash scripts/chaos.sh [--minutes N] [--db sqlite|postgres|both] [--seed S] [--batch B]
# Uses the venv the way scripts/bench.sh does ($BENCH_VENV, .venv-bench, the dev .venv, or a new one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/_bench_env.sh

# Postgres runs as a private cluster of its own (initdb + pg_ctl), never the shared server.
exec "$venv/bin/python" -m tests.crash.chaos_harness "$@"

# Shared by scripts/bench.sh, soak.sh and chaos.sh: picks the venv in $venv ($BENCH_VENV, else
# .venv-bench if present, else the dev .venv if it has transact installed, else a new .venv-bench)
# and installs the package into it when it is missing. Sourced from the repository root.
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

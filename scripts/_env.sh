# Shared by scripts/*.sh: create the venv, install the package, make sure Postgres is up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${TRANSACT_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
. "$VENV/bin/activate"
if ! python -c "import transact, pytest, confluent_kafka, fastapi, playwright" >/dev/null 2>&1 || [ "${TRANSACT_REINSTALL:-0}" = 1 ]; then
  pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
fi
ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
  pg_isready -h 127.0.0.1 -p 5432
}
# The console's browser tests drive Debian's chromium (never `playwright install`).
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "installing chromium..."
    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  fi
}

"""An app driven by the debounce crash tests: python debounce_app.py <db_url> <mode> <workdir> [n].

Modes: ``call`` debounces n calls under one key (period PERIOD_S), records ``called <i> <window id>``
after each call commits and ``calls done``, then holds until SIGKILLed inside the window; ``serve``
only launches (recovery and the queue workers run the window) and exits once ``<workdir>/stop``
exists. The target records ``ran <value>`` each time it really runs.
"""

from __future__ import annotations

import os
import sys
import time

import effects  # type: ignore[import-not-found]  # beside this script

from transact import DBOS, Debouncer

DB_URL, MODE, WORKDIR = sys.argv[1], sys.argv[2], sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 50
PERIOD_S = 3.0


@DBOS.workflow(name="debounce-target")
def target(value: int) -> int:
    effects.record(WORKDIR, f"ran {value}")
    return value


debouncer = Debouncer.create(target, debounce_timeout_sec=60)


def main() -> None:
    DBOS(config={"name": "debounce-crash-app", "system_database_url": DB_URL, "lease_seconds": 30})
    DBOS.launch()
    if MODE == "call":
        for i in range(N):
            handle = debouncer.debounce("the-key", PERIOD_S, i)
            effects.record(WORKDIR, f"called {i} {handle.workflow_id}")
        effects.record(WORKDIR, "calls done")
        while True:  # the test kills us inside the window
            time.sleep(1)
    while not os.path.exists(os.path.join(WORKDIR, "stop")):
        time.sleep(0.05)
    DBOS.destroy()


if __name__ == "__main__":
    main()

"""The process that crashes in workload 4: start N workflows, then wait to be SIGKILLed."""

from __future__ import annotations

import sys
import time

from bench.recovery import bench_rec_wf
from transact import DBOS


def main() -> None:
    url, n, executor_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    config = {"name": "bench", "system_database_url": url}
    if executor_id:
        config["executor_id"] = executor_id
    DBOS(config=config)
    DBOS.launch()
    for i in range(n):
        DBOS.start_workflow(bench_rec_wf, i)
    print("started", flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main()

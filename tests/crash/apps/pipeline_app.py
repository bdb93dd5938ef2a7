"""The seed's data pipeline and a class workflow, for crash tests:
python pipeline_app.py <db_url> <mode> <workdir>.

``index_document`` is a step enqueued directly (a workflow of one step per document). Each run of a
step appends to <workdir>/effects.txt (fsync'd); a step holds while <workdir>/hold-<name> exists.
"""

from __future__ import annotations

import sys

import effects  # type: ignore[import-not-found]  # beside this script

from transact import DBOS, DBOSConfiguredInstance, Queue, SetWorkflowID, WorkflowHandle

DB_URL, MODE, WORKDIR = sys.argv[1], sys.argv[2], sys.argv[3]
queue = Queue("indexing_queue")


def effect(text: str) -> None:
    effects.record(WORKDIR, text)


def hold(name: str) -> None:
    effects.hold(WORKDIR, name)


@DBOS.step()
def index_document(url: str) -> int:
    effect(f"start {url}")
    hold(url)
    effect(f"done {url}")
    return len(url)


@DBOS.workflow()
def indexing_workflow(urls: list[str]) -> int:
    handles: list[WorkflowHandle[int]] = [queue.enqueue(index_document, url) for url in urls]
    return sum(handle.get_result() for handle in handles)


@DBOS.dbos_class()
class Indexer(DBOSConfiguredInstance):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        super().__init__(config_name=prefix)

    @DBOS.step()
    def index(self, name: str) -> str:
        effect(f"start {self.prefix}{name}")
        hold(name)
        effect(f"done {self.prefix}{name}")
        return f"{self.prefix}{name}"

    @DBOS.workflow()
    def run(self, names: list[str]) -> str:
        return ",".join(self.index(n) for n in names)


indexer = Indexer("doc-")  # before launch(), so recovery finds it


def main() -> None:
    DBOS(config={"name": "pipeline-app", "system_database_url": DB_URL, "lease_seconds": 30})
    DBOS.launch()
    if MODE == "pipeline":
        with SetWorkflowID("pipeline"):
            handle = DBOS.start_workflow(indexing_workflow, ["a", "bb", "ccc", "dddd"])
    else:
        with SetWorkflowID("class-run"):
            handle = DBOS.start_workflow(indexer.run, ["x", "y", "z"])
    print(f"RESULT {handle.get_result()}", flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()

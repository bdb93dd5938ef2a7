"""One workflow in four code versions, for crash tests of patching:
python patch_app.py <db_url> <code> <workdir> <workflow_id>.

``code`` is old (foo then bar), patched (``DBOS.patch("use-baz")`` picks baz over foo),
deprecated (``DBOS.deprecate_patch("use-baz")`` then baz) or removed (baz, no call). Each step run
appends to <workdir>/effects.txt; ``bar`` holds while <workdir>/hold-bar exists. With an id that
has no run yet the app starts one; otherwise recovery finishes the killed run. Prints
``RESULT <value>`` or ``ERROR <type>: <message>``.
"""

from __future__ import annotations

import sys

import effects  # type: ignore[import-not-found]  # beside this script

from transact import DBOS, SetWorkflowID

DB_URL, CODE, WORKDIR, WORKFLOW_ID = sys.argv[1:5]


@DBOS.step()
def foo() -> str:
    effects.record(WORKDIR, "foo")
    return "foo"


@DBOS.step()
def baz() -> str:
    effects.record(WORKDIR, "baz")
    return "baz"


@DBOS.step()
def bar() -> str:
    effects.record(WORKDIR, "start bar")
    effects.hold(WORKDIR, "bar")
    return "bar"


@DBOS.workflow()
def upgrade() -> str:
    if CODE == "old":
        first = foo()
    elif CODE == "patched":
        first = baz() if DBOS.patch("use-baz") else foo()
    elif CODE == "deprecated":
        DBOS.deprecate_patch("use-baz")
        first = baz()
    else:
        first = baz()
    return f"{first}+{bar()}"


def main() -> None:
    DBOS(config={"name": "patch-app", "system_database_url": DB_URL, "lease_seconds": 30})
    DBOS.launch()
    if DBOS.get_workflow_status(WORKFLOW_ID) is None:
        with SetWorkflowID(WORKFLOW_ID):
            DBOS.start_workflow(upgrade)
    try:
        print(f"RESULT {DBOS.retrieve_workflow(WORKFLOW_ID).get_result()}", flush=True)
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The crash-and-resume demo on SQLite: starts a checkout app, SIGKILLs it mid-workflow, restarts it.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
python examples/demo.py "$@"

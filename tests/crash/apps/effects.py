"""Shared by the crash-test apps: side effects a test can count across SIGKILLs, and holds it can
release. Each app runs as a script, so this folder is on its import path."""

from __future__ import annotations

import os
import time


def record(workdir: str, text: str) -> None:
    """Append ``text pid=<pid>`` to <workdir>/effects.txt, fsync'd: the line survives a SIGKILL."""
    with open(os.path.join(workdir, "effects.txt"), "a") as f:
        f.write(f"{text} pid={os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


def hold(workdir: str, name: str) -> None:
    """Wait while <workdir>/hold-<name> exists (a test removes it to let the caller go on)."""
    while os.path.exists(os.path.join(workdir, f"hold-{name}")):
        time.sleep(0.02)

"""Random workflow ids (UUID version 4) without a system call per id.

``uuid.uuid4()`` reads the kernel's random source for each id, and that call lets go of the GIL:
under load the starting thread then waits for it again, once per start. Here 16 bytes per id come
from a block read once per 256 ids (the same source, so ids stay unguessable)."""

from __future__ import annotations

import os
import threading
import uuid

_BLOCK = 256
_lock = threading.Lock()
_pool = b""
_at = 0
_pid = os.getpid()


def new_workflow_id() -> str:
    global _pool, _at, _pid
    with _lock:
        if _at >= len(_pool) or _pid != os.getpid():  # a forked child must not repeat the parent's ids
            _pool, _at, _pid = os.urandom(16 * _BLOCK), 0, os.getpid()
        chunk = _pool[_at : _at + 16]
        _at += 16
    return str(uuid.UUID(bytes=chunk, version=4))

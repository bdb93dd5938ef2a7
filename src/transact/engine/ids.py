"""Workflow ids: UUID version 7 (RFC 9562), time-ordered, without a system call per id.

Time-ordered ids put each new key at the right edge of the indexes keyed by workflow id (the
status row and every step checkpoint), where random ones land on a random leaf: more pages
touched, split and written per commit, and a working set as large as the whole index. The
other 74 bits are random, so ids stay unguessable (they do tell when a workflow was started).

``uuid.uuid4()`` reads the kernel's random source for each id, and that call lets go of the GIL:
under load the starting thread then waits for it again, once per start. Here the random bits
come from a block read once per 256 ids (the same source)."""

from __future__ import annotations

import os
import threading
import time

_BLOCK = 256
_RANDOM_BYTES = 10  # 80 bits read; 74 used (12 "rand_a" + 62 "rand_b")
_lock = threading.Lock()
_pool = b""
_at = 0
_pid = os.getpid()
_RAND_B = (1 << 62) - 1


def new_workflow_id() -> str:
    global _pool, _at, _pid
    with _lock:
        if _at >= len(_pool) or _pid != os.getpid():  # a forked child must not repeat the parent's ids
            _pool, _at, _pid = os.urandom(_RANDOM_BYTES * _BLOCK), 0, os.getpid()
        chunk = _pool[_at : _at + _RANDOM_BYTES]
        _at += _RANDOM_BYTES
    rand = int.from_bytes(chunk, "big")
    ms = time.time_ns() // 1_000_000
    # 48 bits of Unix milliseconds | version 7 | 12 random bits | variant 0b10 | 62 random bits
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62 | rand & _RAND_B
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

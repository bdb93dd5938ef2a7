"""``LoopService``: the thread / stop / wake / hint-listener shape every background loop shares.

Must not import the facade.
"""

from __future__ import annotations

import threading

from transact.engine.runtime import Runtime


class LoopService:
    """One background thread per service, woken early by hints (``_wake``) and by ``stop()``.

    Subclasses implement ``_run`` (loop until ``_stop`` is set), may override ``on_hint`` (called
    from the notification thread: cheap, no database) and ``_prepare`` (work done in ``start()``
    before the thread runs)."""

    thread_name = "transact-service"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _prepare(self) -> None:
        pass

    def _run(self) -> None:
        raise NotImplementedError

    def on_hint(self, kind: str, ident: str, key: str) -> None:
        pass

    def start(self) -> None:
        self._stop.clear()
        self.rt.hint_listeners.append(self.on_hint)
        self._prepare()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        if self.on_hint in self.rt.hint_listeners:
            self.rt.hint_listeners.remove(self.on_hint)

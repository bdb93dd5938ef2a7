"""Background services started by ``launch()``, in order. Each feature adds its factory here.

A factory returns a started-on-demand Service, or None when the feature is unused.
Must not import the facade.
"""

from __future__ import annotations

from collections.abc import Callable

from transact.engine.runtime import Runtime, Service

ServiceFactory = Callable[[Runtime], "Service | None"]
FACTORIES: list[ServiceFactory] = []


def build(rt: Runtime) -> list[Service]:
    services: list[Service] = []
    for factory in FACTORIES:
        service = factory(rt)
        if service is not None:
            services.append(service)
    return services

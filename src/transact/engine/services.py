"""The background services ``launch()`` starts, wired explicitly and in order.

Order matters: the application database is opened and migrated first (recovery may resume a
workflow that runs a transaction at once), then recovery (registers this executor and resumes its
work), the queue dispatcher, the scheduler, and last the integrations the facade passes in.
``destroy()`` stops them in reverse. Must not import the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from transact.engine import transaction
from transact.engine.dispatcher import Dispatcher
from transact.engine.recovery import RecoveryService
from transact.engine.retention import service_for as retention_service
from transact.engine.runtime import Runtime, Service
from transact.engine.scheduler import Scheduler, unresolved_error

ServiceFactory = Callable[[Runtime], "Service | None"]


def build(
    rt: Runtime, *, on_sigterm: Callable[[], None] | None = None, extra: Sequence[ServiceFactory] = ()
) -> list[Service]:
    """Every service this runtime runs, in start order. Fails before anything starts when the
    declarations are inconsistent (e.g. ``@DBOS.scheduled`` on a function that is not a workflow)."""
    unresolved_error(rt.registry)
    services: list[Service] = []
    app_db = transaction.open_app_database(rt)
    if app_db is not None:
        services.append(app_db)
    services.append(RecoveryService(rt, on_sigterm=on_sigterm))
    services.append(Dispatcher(rt))
    rt.scheduler = scheduler = Scheduler(rt)
    services.append(scheduler)
    if (collector := retention_service(rt)) is not None:
        services.append(collector)
    for factory in extra:
        service = factory(rt)
        if service is not None:
            services.append(service)
    return services

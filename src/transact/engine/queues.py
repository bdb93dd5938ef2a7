"""The queue registry: validated limits, their stored form, and the operations on them.

A queue's limits live in the system database (table ``queues``), so every process and client
agrees on them and a change applies everywhere without a restart. ``Queue(...)`` declarations and
``DBOS.register_queue`` both land here; the dispatcher caches the stored limits. Must not import
the facade.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transact._lib import checks
from transact.engine.clock import now_ms
from transact.errors import ConfigError, WorkflowNotFoundError
from transact.storage.queues import ON_CONFLICT, QueueRow

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime
    from transact.storage import Store

DEFAULT_ON_CONFLICT = "update_if_latest_version"


@dataclass(frozen=True)
class QueueConfig:
    """A queue's validated settings."""

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: int | None = None
    rate_period_s: float | None = None
    priority_enabled: bool = False
    partitioned: bool = False
    poll_seconds: float | None = None
    # Partitioned queues: the PENDING cap across all partitions (the others apply per partition).
    global_concurrency: int | None = None
    # The application that polls it, as registered (None: as declared here, or shared).
    owner: str | None = field(default=None, compare=False)


def validate(
    name: object,
    concurrency: object = None,
    limiter: object = None,
    worker_concurrency: object = None,
    priority_enabled: object = False,
    partition_queue: object = False,
    polling_interval_sec: object = None,
    *,
    global_concurrency: object = None,
    partition_concurrency: object = None,
    partition_worker_concurrency: object = None,
    partition_limiter: object = None,
) -> QueueConfig:
    """Check a queue's settings as ``Queue(...)`` / ``register_queue`` take them.

    On a partitioned queue ``concurrency``, ``worker_concurrency`` and ``limiter`` apply per
    partition (as in DBOS); ``partition_concurrency``, ``partition_worker_concurrency`` and
    ``partition_limiter`` are their explicit names, and ``global_concurrency`` caps the queue
    as a whole."""
    # '|' separates the fields of wake-up notifications ("queue|<name>|").
    if not isinstance(name, str) or not name or "|" in name:
        raise checks.fail("a queue name", "a non-empty string without '|'", name)
    where = f"Queue({name!r})"
    partitioned = checks.flag(partition_queue, f"{where} partition_queue")
    conc = _alias(where, "concurrency", concurrency, partition_concurrency, partitioned)
    worker = _alias(where, "worker_concurrency", worker_concurrency, partition_worker_concurrency, partitioned)
    check_worker(where, conc, worker)
    limit, period = check_limiter(where, limiter)
    if partition_limiter is not None:
        _partitioned_only(where, "partition_limiter", partitioned)
        both = check_limiter(where, partition_limiter)
        if limiter is not None and both != (limit, period):
            raise _clash(where, "limiter", "partition_limiter")
        limit, period = both
    glob = checks.optional_count(global_concurrency, f"{where} global_concurrency", minimum=1)
    check_global(where, glob, partitioned)
    poll = polling_interval_sec
    return QueueConfig(
        name=name,
        concurrency=conc,
        worker_concurrency=worker,
        rate_limit=limit,
        rate_period_s=period,
        priority_enabled=checks.flag(priority_enabled, f"{where} priority_enabled"),
        partitioned=partitioned,
        poll_seconds=None if poll is None else checks.seconds(poll, f"{where} polling_interval_sec", positive=True),
        global_concurrency=glob,
    )


def _partitioned_only(where: str, what: str, partitioned: bool) -> None:
    if not partitioned:
        raise ConfigError(
            f"{where} {what} needs partition_queue=True: it limits each partition key; on a queue without "
            "partitions use concurrency / worker_concurrency / limiter"
        )


def _clash(where: str, plain: str, explicit: str) -> ConfigError:
    return ConfigError(
        f"{where} got both {plain} and {explicit} with different values: on a partitioned queue they are the same "
        f"per-partition limit; pass one of them (global_concurrency caps the whole queue)"
    )


def _alias(where: str, plain: str, value: object, explicit: object, partitioned: bool) -> int | None:
    """``plain`` (e.g. ``concurrency``) merged with its ``partition_`` name."""
    got = checks.optional_count(value, f"{where} {plain}", minimum=1)
    if explicit is None:
        return got
    _partitioned_only(where, f"partition_{plain}", partitioned)
    other = checks.optional_count(explicit, f"{where} partition_{plain}", minimum=1)
    if got is not None and got != other:
        raise _clash(where, plain, f"partition_{plain}")
    return other


def check_global(where: str, glob: int | None, partitioned: bool) -> None:
    if glob is not None and not partitioned:
        raise ConfigError(
            f"{where} global_concurrency needs partition_queue=True: on a queue without partitions "
            "concurrency already caps the whole queue; pass concurrency instead"
        )


def check_worker(where: str, conc: int | None, worker: int | None) -> None:
    if conc is not None and worker is not None and worker > conc:
        raise ConfigError(
            f"{where} worker_concurrency ({worker}) cannot exceed concurrency ({conc}): no process "
            "may run more than the global limit; lower worker_concurrency or raise concurrency"
        )


def check_limiter(where: str, limiter: object) -> tuple[int | None, float | None]:
    """``{'limit': n, 'period': seconds}`` -> (limit, period); None -> (None, None)."""
    if limiter is None:
        return None, None
    if not isinstance(limiter, dict) or set(limiter) != {"limit", "period"}:
        shape = "a dict like {'limit': 10, 'period': 1.0} (at most 'limit' starts per 'period' seconds)"
        raise checks.fail(f"{where} limiter", shape, limiter)
    limit = checks.count(limiter["limit"], f"{where} limiter 'limit'", minimum=1)
    period = checks.seconds(limiter["period"], f"{where} limiter 'period'", positive=True)
    return limit, period


def check_on_conflict(on_conflict: object, *, client: bool = False) -> str:
    if on_conflict not in ON_CONFLICT:
        raise checks.fail("register_queue on_conflict", f"one of {', '.join(map(repr, ON_CONFLICT))}", on_conflict)
    if client and on_conflict == "update_if_latest_version":
        raise ConfigError(
            "DBOSClient.register_queue cannot use on_conflict='update_if_latest_version': a client runs no "
            "application version; pass 'always_update' or 'never_update'"
        )
    return str(on_conflict)


def describe(config: QueueConfig) -> str:
    parts = [repr(config.name)]
    if config.concurrency is not None:
        parts.append(f"concurrency={config.concurrency}")
    if config.worker_concurrency is not None:
        parts.append(f"worker_concurrency={config.worker_concurrency}")
    if config.rate_limit is not None:
        parts.append(f"limiter={{'limit': {config.rate_limit}, 'period': {config.rate_period_s}}}")
    if config.priority_enabled:
        parts.append("priority_enabled=True")
    if config.partitioned:
        parts.append("partition_queue=True")
    if config.poll_seconds is not None:
        parts.append(f"polling_interval_sec={config.poll_seconds}")
    if config.global_concurrency is not None:
        parts.append(f"global_concurrency={config.global_concurrency}")
    return ", ".join(parts)


# -- stored form ------------------------------------------------------------------------------
def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def to_row(config: QueueConfig, *, app_version: str | None, now: int, application_name: str | None = None) -> QueueRow:
    return QueueRow(
        queue_name=config.name,
        concurrency=config.concurrency,
        worker_concurrency=config.worker_concurrency,
        rate_limit=config.rate_limit,
        rate_period_ms=_ms(config.rate_period_s),
        priority_enabled=config.priority_enabled,
        partitioned=config.partitioned,
        poll_ms=_ms(config.poll_seconds),
        global_concurrency=config.global_concurrency,
        app_version=app_version,
        created_at=now,
        updated_at=now,
        application_name=None if shared(config.name) else application_name,
    )


def from_row(row: QueueRow) -> QueueConfig:
    return QueueConfig(
        name=row.queue_name,
        concurrency=row.concurrency,
        worker_concurrency=row.worker_concurrency,
        rate_limit=row.rate_limit,
        rate_period_s=None if row.rate_period_ms is None else row.rate_period_ms / 1000,
        priority_enabled=row.priority_enabled,
        partitioned=row.partitioned,
        poll_seconds=None if row.poll_ms is None else row.poll_ms / 1000,
        global_concurrency=row.global_concurrency,
        owner=row.application_name,
    )


# -- operations -------------------------------------------------------------------------------
def shared(name: str) -> bool:
    """Transact's own queues (``_transact_...``): every application declares them and polls them
    for its own workflows, so none owns them."""
    return name.startswith("_transact_")


def register(
    store: Store,
    config: QueueConfig,
    *,
    on_conflict: str,
    app_version: str | None,
    application_name: str | None = None,
) -> QueueConfig:
    """Store ``config`` under ``on_conflict``'s rule for ``application_name`` (the queue's poller;
    None: a client that names no application); returns the limits now in force. Queue names are
    unique across the applications sharing the database: a queue another application registered
    is refused with a ConfigError naming both."""
    row = to_row(config, app_version=app_version, now=now_ms(), application_name=application_name)
    stored, _ = store.queue_register(row, on_conflict=on_conflict)
    owner = stored.application_name
    if application_name is not None and owner is not None and owner != row.application_name:
        raise ConfigError(
            f"queue {config.name!r} is registered by application {owner!r}, so application {application_name!r} "
            "cannot register it: queue names are unique across the applications sharing a system database. "
            f"Give this queue another name, or enqueue on {owner!r}'s queue without declaring it "
            f"(DBOS.retrieve_queue({config.name!r}), or a DBOSClient)"
        )
    return from_row(stored)


def get(store: Store, name: str) -> QueueConfig | None:
    row = store.queue_get(queue_name=name)
    return None if row is None else from_row(row)


def list_all(store: Store) -> list[QueueConfig]:
    return [from_row(r) for r in store.queue_list()]


def update(store: Store, name: str, **changes: Any) -> QueueConfig:
    """Change some limits of a registered queue (keys of ``QueueConfig``), checked against the
    limits it keeps; a clear error when it is not registered."""
    current = get(store, name)
    if current is None:
        raise ConfigError(
            f"queue {name!r} is not registered: register it with DBOS.register_queue({name!r}, ...) first"
        )
    merged = QueueConfig(**{**current.__dict__, **changes})
    check_worker(f"Queue({name!r})", merged.concurrency, merged.worker_concurrency)
    check_global(f"Queue({name!r})", merged.global_concurrency, merged.partitioned)
    columns: dict[str, object] = {}
    for key in changes:
        if key == "rate_limit":
            columns["rate_limit"] = merged.rate_limit
        elif key == "rate_period_s":
            columns["rate_period_ms"] = _ms(merged.rate_period_s)
        elif key == "partitioned":
            columns["partitioned"] = merged.partitioned
        elif key == "poll_seconds":
            columns["poll_ms"] = _ms(merged.poll_seconds)
        else:
            columns[key] = getattr(merged, key)
    row = store.queue_update(queue_name=name, changes=columns, now=now_ms())
    if row is None:
        raise ConfigError(f"queue {name!r} was deleted while being changed; register it again")
    return from_row(row)


def delete(store: Store, name: str) -> bool:
    """Forget a registered queue. Refused (ConfigError) while workflows still wait or run in it:
    they would never be dequeued. False when no such queue was registered."""
    deleted, active = store.queue_delete(queue_name=name)
    if active:
        raise ConfigError(
            f"queue {name!r} still holds {active} enqueued, delayed or running workflow(s); let them finish "
            "or cancel them (DBOS.cancel_workflow) before deleting the queue"
        )
    return deleted


def set_delay(store: Store, workflow_id: str, seconds: object) -> None:
    """Make a DELAYED workflow due ``seconds`` from now (0: now)."""
    delay = checks.seconds(seconds, "set_workflow_delay seconds")
    checks.text(workflow_id, "set_workflow_delay workflow_id")
    now = now_ms()
    status = store.queue_set_delay(workflow_id=workflow_id, available_at=now + round(delay * 1000), now=now)
    if status is None:
        return
    if status == "":
        raise WorkflowNotFoundError(workflow_id)
    raise ConfigError(
        f"workflow {workflow_id!r} is {status}, not DELAYED: only a workflow enqueued with "
        "SetEnqueueOptions(delay_seconds=...) and not yet due can have its delay changed"
    )


# -- which queues a process dispatches ----------------------------------------------------------
_listen: weakref.WeakKeyDictionary[Runtime, frozenset[str]] = weakref.WeakKeyDictionary()


def set_listen(rt: Runtime, names: Iterable[str]) -> None:
    """Dispatch only these queues in ``rt``'s process (set before launch)."""
    _listen[rt] = frozenset(names)


def listened(rt: Runtime) -> frozenset[str] | None:
    """The queues ``rt`` dispatches, or None for every queue it declares."""
    return _listen.get(rt)

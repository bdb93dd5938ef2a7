"""Enqueueing a workflow known by name only: ``DBOSClient.enqueue`` and its transactional and
debounced forms, which run no workflow code and so know neither the function nor its class.

The options are checked whole before anything is written; the row is built by ``starts.new_row``
like every other start. A method is named by its bare name plus ``workflow_class_name`` (and
``workflow_config_name`` for a configured instance): they go on the row's ``class_name`` /
``config_name``, and the worker finds the method and its instance through
``Registry.for_row``. Must not import the facade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from transact._lib import checks
from transact._options import (
    DUPLICATION_POLICIES,
    attributes_text,
    check_attributes,
    check_enqueue_options,
    policy_name,
)
from transact.engine import auth, serialization, starts
from transact.engine.clock import now_ms
from transact.engine.ids import new_workflow_id
from transact.engine.serializers import WorkflowSerializationFormat, is_portable_type
from transact.errors import ConfigError, QueueDeduplicatedError
from transact.storage import Store
from transact.storage.rows import WorkflowRow

_DEDUP_ATTEMPTS = 3  # the holder of a deduplication id may finish between the clash and the look-up


class _EnqueueRequired(TypedDict):
    workflow_name: str
    queue_name: str


class EnqueueOptions(_EnqueueRequired, total=False):
    """The options of ``DBOSClient.enqueue``: ``workflow_name`` and ``queue_name`` are required."""

    workflow_id: str
    workflow_class_name: str  # the method's class (its @DBOS.dbos_class name); workflow_name is the method
    workflow_config_name: str  # the configured instance (DBOSConfiguredInstance) the method runs on
    app_version: str
    application_name: str  # the application whose workers run it (default: the client's)
    workflow_timeout: float  # seconds; counted from when a worker dequeues it
    deduplication_id: str
    duplication_policy: str  # on an active deduplication_id: "reject" (default) or "return_existing"
    deduplication_policy: str  # another spelling of duplication_policy
    priority: int
    delay_seconds: float
    queue_partition_key: str
    attributes: dict[str, Any]
    serialization_type: WorkflowSerializationFormat | str | None
    authenticated_user: str  # recorded as the user who started it
    authenticated_roles: list[str]


ENQUEUE_KEYS = tuple(_EnqueueRequired.__annotations__) + tuple(EnqueueOptions.__annotations__)
POLICY_KEYS = ("duplication_policy", "deduplication_policy")
# DBOS keys a row cannot carry here: each refused with the reason.
_REFUSED = {
    "max_recovery_attempts": (
        "the worker applies the limit of its @DBOS.workflow(max_recovery_attempts=...) declaration; "
        "set it there and drop this option"
    ),
}


def duplication_policy(options: Mapping[str, Any]) -> str:
    """``duplication_policy`` (or its other spelling ``deduplication_policy``): ``"reject"``
    (default) or ``"return_existing"``."""
    given = {key: policy_name(options[key]) for key in POLICY_KEYS if options.get(key) is not None}
    if len(set(given.values())) > 1:
        raise ConfigError(
            f"enqueue options 'duplication_policy' and 'deduplication_policy' disagree ({given}); give one of them"
        )
    if not given:
        return "reject"
    key, policy = next(iter(given.items()))  # (the spellings agree)
    if policy not in DUPLICATION_POLICIES:
        raise ConfigError(
            f"enqueue option {key!r} must be one of {', '.join(map(repr, DUPLICATION_POLICIES))}, got {policy!r}"
        )
    return str(policy)


def _caller(options: Mapping[str, Any]) -> auth.Auth | None:
    user = options.get("authenticated_user")
    roles = options.get("authenticated_roles")
    checks.text(user, "enqueue option 'authenticated_user'", optional=True, bounded=True)
    if roles is not None and (
        isinstance(roles, str)
        or not isinstance(roles, Sequence)
        or not all(isinstance(role, str) and role for role in roles)
    ):
        raise checks.fail("enqueue option 'authenticated_roles'", "a list of non-empty role names", roles)
    if user is None and roles is None:
        return None
    return auth.Auth(user, tuple(roles) if roles is not None else None)


def _checked(options: Any) -> Mapping[str, Any]:
    if not isinstance(options, Mapping):
        raise ConfigError(f"enqueue options must be a dict with 'workflow_name' and 'queue_name', got {options!r}")
    for key, why in _REFUSED.items():
        if key in options:
            raise ConfigError(f"enqueue option {key!r} is not supported: {why}")
    unknown = sorted(set(options) - set(ENQUEUE_KEYS))
    if unknown:
        raise ConfigError(f"unknown enqueue option {unknown[0]!r}; known options are: {', '.join(ENQUEUE_KEYS)}")
    for key in ("workflow_name", "queue_name"):
        if not isinstance(options.get(key), str) or not options[key]:
            raise ConfigError(f"enqueue option {key!r} must be a non-empty string, got {options.get(key)!r}")
    for key in ("app_version", "application_name"):
        if options.get(key) is not None and not isinstance(options[key], str):
            raise checks.fail(f"enqueue option {key!r}", "a string", options[key])
    for key in ("workflow_id", "workflow_class_name", "workflow_config_name"):
        checks.text(options.get(key) or None, f"enqueue option {key!r}", optional=True, bounded=True)
    if options.get("workflow_config_name") and not options.get("workflow_class_name"):
        raise ConfigError(
            "enqueue option 'workflow_config_name' needs 'workflow_class_name' too: a configured instance is "
            "found by its class name and its config name"
        )
    check_enqueue_options(
        "enqueue option",
        deduplication_id=options.get("deduplication_id"),
        priority=options.get("priority") or 0,
        queue_partition_key=options.get("queue_partition_key"),
        delay_seconds=options.get("delay_seconds"),
    )
    timeout = options.get("workflow_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0):
        raise ConfigError(f"enqueue option 'workflow_timeout' must be a number of seconds >= 0, got {timeout!r}")
    return options


def enqueue_row(
    options: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any], *, application_name: str | None = None
) -> WorkflowRow:
    """The ENQUEUED (or DELAYED) row a queue worker will claim, for a workflow known by name only.
    It belongs to option ``application_name``, else to ``application_name`` (the client's). The
    duplication policy is the caller's to apply (``duplication_policy``)."""
    opts = _checked(options)
    duplication_policy(opts)
    caller = _caller(opts)
    attributes = check_attributes(opts.get("attributes"), "enqueue option 'attributes'", optional=True)
    name = str(opts["workflow_name"])
    timeout = opts.get("workflow_timeout")
    spec = starts.QueueSpec(
        queue_name=str(opts["queue_name"]),
        deduplication_id=opts.get("deduplication_id"),
        priority=opts.get("priority") or 0,
        partition_key=opts.get("queue_partition_key"),
        delay_seconds=opts.get("delay_seconds"),
        app_version=opts.get("app_version"),
        application_name=opts.get("application_name") or application_name,
    )
    portable = is_portable_type(opts.get("serialization_type"), "enqueue option")
    return starts.new_row(
        workflow_id=opts.get("workflow_id") or new_workflow_id(),
        name=name,
        class_name=opts.get("workflow_class_name") or None,
        config_name=opts.get("workflow_config_name") or None,
        inputs=serialization.dumps_inputs(None, args, kwargs, workflow=name, portable=portable),
        now=now_ms(),
        queue=spec,
        timeout_ms=int(timeout * 1000) if timeout else None,
        attributes=attributes_text(attributes),
        caller=caller,
    )


def enqueue(
    store: Store,
    options: Mapping[str, Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    application_name: str | None = None,
) -> str:
    """Enqueue by name; the workflow id (an existing one's when the id is taken by the same
    workflow, or the holder of its deduplication id under ``duplication_policy='return_existing'``)."""
    row = enqueue_row(options, args, kwargs, application_name=application_name)
    returns_existing = duplication_policy(options) == "return_existing"
    for _ in range(_DEDUP_ATTEMPTS):
        try:
            stored, _ = starts.insert(store, row)
            return stored.workflow_id
        except QueueDeduplicatedError:
            if not returns_existing or row.deduplication_id is None:
                raise
            owner = store.queue_dedup_owner(queue_name=row.queue_name or "", deduplication_id=row.deduplication_id)
            if owner is not None:
                return owner
    raise QueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id or "")

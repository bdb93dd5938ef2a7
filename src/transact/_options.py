"""Context-manager setters for the next workflow start: id, timeout, attributes, enqueue options."""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from transact._lib import checks
from transact.engine.serializers import is_portable_type
from transact.errors import ConfigError

MAX_PRIORITY = 2**31 - 1  # the priority column is a 32-bit INTEGER
# What an enqueue does when its deduplication id is active in the queue, or its workflow id
# (SetWorkflowID) is taken: the default raises (DBOSQueueDeduplicatedError) / returns the
# existing workflow's handle, as DBOS does.
DUPLICATION_POLICIES = ("reject", "return_existing")
ID_REUSE_POLICIES = ("return_existing", "reject")


def policy_name(value: str) -> str:
    """A duplication / id-reuse policy in its code spelling: both spellings circulate
    ("return-existing" in prose, "return_existing" in code), so either is accepted."""
    return value.replace("-", "_") if isinstance(value, str) else value


def check_enqueue_options(
    where: str,
    *,
    deduplication_id: object = None,
    priority: object = None,
    queue_partition_key: object = None,
    delay_seconds: object = None,
) -> None:
    """The enqueue options' own rules, the same for ``SetEnqueueOptions`` and ``DBOSClient.enqueue``
    (the rules that depend on the queue are the queue's)."""
    checks.text(deduplication_id, f"{where} 'deduplication_id'", optional=True)
    checks.text(queue_partition_key, f"{where} 'queue_partition_key'", optional=True)
    if priority is not None:
        checks.count(priority, f"{where} 'priority'", maximum=MAX_PRIORITY)
    if delay_seconds is not None:
        checks.seconds(delay_seconds, f"{where} 'delay_seconds'")


def _check_json(value: object, path: str, where: str) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if "\x00" in value:  # Postgres jsonb cannot hold it: refused on both databases alike
            raise ConfigError(f"{where}: the value at {path} contains a NUL character, which JSON storage refuses")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: the value at {path} is {value!r}; JSON has no NaN or infinity")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: the object at {path} has key {key!r}; JSON object keys are strings")
            _check_json(item, f"{path}[{key!r}]", where)
        return
    raise ConfigError(
        f"{where}: the value at {path} is a {type(value).__name__} ({value!r}); attribute values must be JSON: "
        "str, int, float, bool, None, or lists and dicts of those"
    )


def attribute_json(value: object) -> str:
    """One attribute value as canonical JSON text (checked already): compact, keys sorted, text
    unescaped, so equal values are equal text (SQLite compares nested values as text)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def check_attributes(attributes: object, where: str, *, optional: bool = False) -> dict[str, object] | None:
    """Workflow attributes checked at the call: a dict of string keys to JSON values (an error
    names the offending key). Returns a plain dict copy; None when ``optional`` and not given."""
    if attributes is None and optional:
        return None
    if not isinstance(attributes, Mapping):
        raise ConfigError(f"{where} needs a dict of attributes (string keys, JSON values), got {attributes!r}")
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: attribute key {key!r} is not a non-empty string")
        _check_json(value, f"key {key!r}", where)
    return dict(attributes)


def attributes_text(attributes: Mapping[str, object] | None) -> str | None:
    """Checked attributes as the JSON object text a row stores (None for none), canonical as
    ``attribute_json``."""
    if not attributes:
        return None
    return json.dumps(dict(attributes), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


_next_workflow_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("next_workflow_id", default=None)
_workflow_timeout: contextvars.ContextVar[float | None] = contextvars.ContextVar("workflow_timeout", default=None)
_next_attributes: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "next_workflow_attributes", default=None
)


@dataclass(frozen=True)
class EnqueueOptions:
    deduplication_id: str | None = None
    priority: int | None = None
    queue_partition_key: str | None = None
    delay_seconds: float | None = None
    app_version: str | None = None
    duplication_policy: str = "reject"
    workflow_id_reuse_policy: str = "return_existing"
    attributes: dict[str, object] | None = None
    portable: bool = False  # serialization_type PORTABLE: the inputs (and so the result) as portable JSON
    application_name: str | None = None  # the application that runs it (default: the queue's poller)


_enqueue_options: contextvars.ContextVar[EnqueueOptions | None] = contextvars.ContextVar(
    "enqueue_options", default=None
)


def take_workflow_id() -> str | None:
    """The id set by the innermost ``SetWorkflowID``; it applies to the next start only."""
    wid = _next_workflow_id.get()
    if wid is not None:
        _next_workflow_id.set(None)
    return wid


def take_workflow_attributes(queued: bool) -> str | None:
    """The attributes of the next start, as stored JSON text: ``SetWorkflowAttributes`` (the next
    start only) with, for an enqueue, ``SetEnqueueOptions(attributes=...)`` over them."""
    attributes = _next_attributes.get()
    if attributes is not None:
        _next_attributes.set(None)
    opts = _enqueue_options.get() if queued else None
    if opts is not None and opts.attributes:
        attributes = {**(attributes or {}), **opts.attributes}
    return attributes_text(attributes)


def current_timeout() -> float | None:
    return _workflow_timeout.get()


def current_enqueue_options() -> EnqueueOptions | None:
    return _enqueue_options.get()


class SetWorkflowID:
    """``with SetWorkflowID("key"):`` the next workflow started in the block gets that id."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id: str = checks.text(workflow_id, "SetWorkflowID(workflow_id)", bounded=True) or ""
        self._token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> SetWorkflowID:
        self._token = _next_workflow_id.set(self.workflow_id)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _next_workflow_id.reset(self._token)


class SetWorkflowAttributes:
    """``with SetWorkflowAttributes({"customer": "acme"}):`` the next workflow started or enqueued
    in the block carries these attributes (``WorkflowStatus.attributes``; ``list_workflows(
    attributes=...)`` finds it by them). Values must be JSON: str, int, float, bool, None, lists
    and dicts of those."""

    def __init__(self, attributes: Mapping[str, object]) -> None:
        self.attributes = check_attributes(attributes, "SetWorkflowAttributes")
        self._token: contextvars.Token[dict[str, object] | None] | None = None

    def __enter__(self) -> SetWorkflowAttributes:
        self._token = _next_attributes.set(self.attributes)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _next_attributes.reset(self._token)


class SetWorkflowTimeout:
    """``with SetWorkflowTimeout(seconds):`` workflows started in the block are cancelled past the
    deadline (start-to-close; children inherit it). ``None`` clears an outer timeout."""

    def __init__(self, workflow_timeout_sec: float | None) -> None:
        if workflow_timeout_sec is not None:
            checks.seconds(workflow_timeout_sec, "SetWorkflowTimeout(workflow_timeout_sec)", positive=True)
        self.timeout = workflow_timeout_sec
        self._token: contextvars.Token[float | None] | None = None

    def __enter__(self) -> SetWorkflowTimeout:
        self._token = _workflow_timeout.set(self.timeout)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _workflow_timeout.reset(self._token)


class SetEnqueueOptions:
    """Options for the next ``queue.enqueue`` in the block."""

    def __init__(
        self,
        *,
        deduplication_id: str | None = None,
        priority: int | None = None,
        queue_partition_key: str | None = None,
        delay_seconds: float | None = None,
        app_version: str | None = None,
        duplication_policy: str = "reject",
        workflow_id_reuse_policy: str = "return_existing",
        attributes: Mapping[str, object] | None = None,
        serialization_type: object = None,
        application_name: str | None = None,
    ) -> None:
        """``duplication_policy``: on an active ``deduplication_id``, ``"reject"`` raises
        DBOSQueueDeduplicatedError, ``"return_existing"`` returns the handle of the workflow holding
        it. ``workflow_id_reuse_policy``: on a workflow id (SetWorkflowID) already taken,
        ``"return_existing"`` returns that workflow's handle, ``"reject"`` raises WorkflowConflictError.
        ``attributes``: JSON attributes each enqueued workflow carries (as ``SetWorkflowAttributes``).
        ``serialization_type``: ``WorkflowSerializationFormat.PORTABLE`` stores the inputs, output and
        error as portable JSON (other languages or plain SQL read them). ``application_name``: the
        application (config ``name``) that owns, dequeues and runs the workflow, for enqueuing
        another application's workflow on its queue; default: the queue's application."""
        # Ids are checked where they are used (Queue.enqueue), with the queue's own rules.
        check_enqueue_options("SetEnqueueOptions", priority=priority, delay_seconds=delay_seconds)
        duplication_policy = policy_name(duplication_policy)
        workflow_id_reuse_policy = policy_name(workflow_id_reuse_policy)
        for value, allowed, what in (
            (duplication_policy, DUPLICATION_POLICIES, "duplication_policy"),
            (workflow_id_reuse_policy, ID_REUSE_POLICIES, "workflow_id_reuse_policy"),
        ):
            if value not in allowed:
                raise checks.fail(f"SetEnqueueOptions {what}", f"one of {', '.join(map(repr, allowed))}", value)
        self.options = EnqueueOptions(
            deduplication_id,
            priority,
            queue_partition_key,
            delay_seconds,
            app_version,
            duplication_policy,
            workflow_id_reuse_policy,
            check_attributes(attributes, "SetEnqueueOptions attributes", optional=True),
            is_portable_type(serialization_type, "SetEnqueueOptions"),
            checks.text(application_name, "SetEnqueueOptions application_name", optional=True),
        )
        self._token: contextvars.Token[EnqueueOptions | None] | None = None

    def __enter__(self) -> SetEnqueueOptions:
        self._token = _enqueue_options.set(self.options)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _enqueue_options.reset(self._token)

"""Value <-> bytes. Pickle by default; failures raise at the call site naming the argument.

Must not import the facade.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from transact.errors import SerializationError, TransactError

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def dumps(value: Any, *, what: str) -> bytes:
    try:
        return pickle.dumps(value, protocol=_PROTOCOL)
    except Exception as exc:
        raise unpicklable(exc, what=what) from exc


def dumps_fast(value: Any) -> bytes:
    """``dumps`` without the error wrapping, for the per-step hot path (no ``what`` string built
    per call): on failure, callers name the value with ``unpicklable``."""
    return pickle.dumps(value, protocol=_PROTOCOL)


def unpicklable(exc: Exception, *, what: str) -> SerializationError:
    """The error for a value pickle refused (``exc``), naming it (``what``)."""
    error = SerializationError(
        f"{what} cannot be serialized ({type(exc).__name__}: {exc}); return or pass picklable values "
        "(plain data, dataclasses, ...)"
    )
    error.__cause__ = exc
    return error


def loads(data: bytes | None) -> Any:
    return None if data is None else pickle.loads(data)


def dumps_inputs(
    fn: Callable[..., Any] | None, args: Sequence[Any], kwargs: Mapping[str, Any], *, workflow: str
) -> bytes:
    """A workflow's arguments as stored with its row. On failure, the error names the argument
    (by parameter name when ``fn`` is known, else ``#position``) and says nothing was started."""
    try:
        return pickle.dumps((tuple(args), dict(kwargs)), protocol=_PROTOCOL)
    except Exception as exc:
        culprit = _find_unpicklable(fn, args, kwargs)
        raise SerializationError(
            f"argument {culprit!r} of workflow {workflow!r} cannot be serialized ({type(exc).__name__}: {exc}); "
            "workflow arguments must be picklable so the workflow can be recovered. Nothing was started."
        ) from exc


def _find_unpicklable(fn: Callable[..., Any] | None, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    try:
        if fn is None:
            raise TypeError("no signature")
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"#{i}": a for i, a in enumerate(args)} | dict(kwargs)
    for name, value in bound.items():
        try:
            pickle.dumps(value, protocol=_PROTOCOL)
        except Exception:
            return name
    return "?"


def dumps_error(exc: BaseException) -> bytes:
    """Serialize an exception so that replays raise an equal one; unpicklable ones become a
    TransactError carrying the type name and message."""
    try:
        data = pickle.dumps(exc, protocol=_PROTOCOL)
        pickle.loads(data)  # exceptions with custom __init__ often pickle but fail to unpickle
        return data
    except Exception:
        return pickle.dumps(TransactError(f"{type(exc).__name__}: {exc}"), protocol=_PROTOCOL)


def loads_error(data: bytes) -> BaseException:
    value = pickle.loads(data)
    if isinstance(value, BaseException):
        return value
    return TransactError(str(value))

"""Value <-> stored bytes, self-describing so rows written before a serializer switch still decode.

Framing, by the first byte:
- ``0x80``: pickle (protocol >= 2 always starts so): the default, and every row written before
  serializers were configurable.
- ``0x01``: a custom serializer's value: ``0x01 name 0x00`` + the UTF-8 of its text. Reading it
  needs a serializer of that name configured, else a ``SerializationError`` says how to configure it.
- anything else: portable JSON, the UTF-8 JSON text itself (a JSON document never starts with
  0x80 or 0x01), so plain SQL writes ``convert_to('{...}', 'UTF8')`` and reads
  ``convert_from(output, 'UTF8')::json`` (SQLite: the text in the BLOB column, or a TEXT value).

The writer is process-wide (``install``): None (pickle) keeps the default path to one check.
Failures raise at the call site naming the argument. Must not import the facade.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from transact.engine import serializers
from transact.engine.serializers import PORTABLE_NAME, Serializer
from transact.errors import SerializationError, TransactError

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_PICKLE = 0x80
_CUSTOM = 0x01

# The serializer values are written with (None: pickle) and the ones values can be read with.
_writer: Serializer | None = None
_readers: dict[str, Serializer] = {}
_PORTABLE = serializers.DBOSPortableJSON()


def install(serializer: Any, *, what: str = "config key 'serializer'") -> None:
    """Make ``serializer`` (None or DefaultSerializer: pickle) the one every stored value is written
    with; values written by it (and by pickle and portable JSON) decode from then on."""
    global _writer
    checked = serializers.check(serializer, what)
    _writer = checked
    _readers.clear()
    if checked is not None and checked.name() != PORTABLE_NAME:
        _readers[checked.name()] = checked


def add_reader(serializer: Any, *, what: str) -> None:
    """Let values written by ``serializer`` decode here without writing with it."""
    checked = serializers.check(serializer, what)
    if checked is not None and checked.name() != PORTABLE_NAME:
        _readers[checked.name()] = checked


def writer_name() -> str:
    return serializers.PICKLE_NAME if _writer is None else _writer.name()


# -- writing ------------------------------------------------------------------------------------
def _encode(serializer: Serializer, value: Any, what: str) -> bytes:
    name = serializer.name()
    try:
        text = serializer.serialize(value)
    except Exception as exc:
        raise SerializationError(
            f"{what} cannot be serialized by serializer {name!r} ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(text, str):
        raise SerializationError(f"serializer {name!r} returned {type(text).__name__} for {what}; it must return str")
    if name == PORTABLE_NAME:
        return text.encode()
    return b"\x01" + name.encode() + b"\x00" + text.encode()


def dumps(value: Any, *, what: str, portable: bool = False) -> bytes:
    """``value`` as stored: with the configured serializer, or portable JSON when ``portable``."""
    if _writer is None and not portable:
        try:
            return pickle.dumps(value, protocol=_PROTOCOL)
        except Exception as exc:
            raise unpicklable(exc, what=what) from exc
    return _encode(_PORTABLE if portable else _writer, value, what)  # type: ignore[arg-type]


def dumps_fast(value: Any) -> bytes:
    """``dumps`` without the error wrapping, for the per-step hot path (no ``what`` string built
    per call): on failure, callers name the value with ``unpicklable``."""
    if _writer is None:
        return pickle.dumps(value, protocol=_PROTOCOL)
    return _encode(_writer, value, "the value")


def unpicklable(exc: Exception, *, what: str) -> SerializationError:
    """The error for a value the serializer refused (``exc``), naming it (``what``)."""
    if _writer is None:
        hint = "return or pass picklable values (plain data, dataclasses, ...)"
    else:
        hint = f"return or pass values serializer {_writer.name()!r} accepts"
    error = SerializationError(f"{what} cannot be serialized ({type(exc).__name__}: {exc}); {hint}")
    error.__cause__ = exc
    return error


def dumps_inputs(
    fn: Callable[..., Any] | None,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    workflow: str,
    portable: bool = False,
) -> bytes:
    """A workflow's arguments as stored with its row. On failure, the error names the argument
    (by parameter name when ``fn`` is known, else ``#position``) and says nothing was started.
    Portable: ``{"positionalArgs": [...], "namedArgs": {...}}``."""
    try:
        if _writer is None and not portable:
            return pickle.dumps((tuple(args), dict(kwargs)), protocol=_PROTOCOL)
        if portable or writer_name() == PORTABLE_NAME:
            return _encode(_PORTABLE, {"positionalArgs": list(args), "namedArgs": dict(kwargs)}, "the arguments")
        return _encode(_writer, {"args": list(args), "kwargs": dict(kwargs)}, "the arguments")  # type: ignore[arg-type]
    except Exception as exc:
        culprit = _find_unserializable(fn, args, kwargs, portable)
        raise SerializationError(
            f"argument {culprit!r} of workflow {workflow!r} cannot be serialized ({type(exc).__name__}: {exc}); "
            f"workflow arguments must be {_accepted(portable)} so the workflow can be recovered. Nothing was started."
        ) from exc


def _accepted(portable: bool) -> str:
    if portable or writer_name() == PORTABLE_NAME:
        return "representable in portable JSON"
    return "picklable" if _writer is None else f"accepted by serializer {writer_name()!r}"


def _find_unserializable(
    fn: Callable[..., Any] | None, args: Sequence[Any], kwargs: Mapping[str, Any], portable: bool
) -> str:
    try:
        if fn is None:
            raise TypeError("no signature")
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"#{i}": a for i, a in enumerate(args)} | dict(kwargs)
    for name, value in bound.items():
        try:
            dumps(value, what=name, portable=portable)
        except Exception:
            return name
    return "?"


def dumps_error(exc: BaseException, *, portable: bool = False) -> bytes:
    """Serialize an exception so that replays raise an equal one; unpicklable ones become a
    TransactError carrying the type name and message. Portable (or a portable JSON writer): the
    ``{"name", "message", "code", "data"}`` shape."""
    if portable or (_writer is not None and _writer.name() == PORTABLE_NAME):
        return _PORTABLE.serialize(serializers.error_to_portable(exc)).encode()
    if _writer is not None:
        try:
            data = _encode(_writer, exc, "the error")
            loads_error(data)
            return data
        except Exception:
            return _encode(_PORTABLE, serializers.error_to_portable(exc), "the error")
    try:
        data = pickle.dumps(exc, protocol=_PROTOCOL)
        pickle.loads(data)  # exceptions with custom __init__ often pickle but fail to unpickle
        return data
    except Exception:
        return pickle.dumps(TransactError(f"{type(exc).__name__}: {exc}"), protocol=_PROTOCOL)


# -- reading ------------------------------------------------------------------------------------
def loads(data: bytes | None) -> Any:
    if data is None:
        return None
    if data and data[0] == _PICKLE:
        return pickle.loads(data)
    return _loads_other(data)


def is_portable(data: bytes | str | None) -> bool:
    """Whether a stored value is portable JSON (so a workflow whose inputs are answers in kind)."""
    if not data:
        return False
    if isinstance(data, str):
        return True
    return data[0] not in (_PICKLE, _CUSTOM)


def _loads_other(data: bytes | str) -> Any:
    if isinstance(data, str):  # SQLite: JSON written as TEXT by plain SQL
        return _json(data)
    raw = bytes(data)
    if not raw:
        return None
    if raw[0] != _CUSTOM:
        return _json(raw)
    end = raw.find(b"\x00", 1)
    if end < 0:
        raise SerializationError("a stored value is framed as a custom serializer's but has no name; it is corrupt")
    name = raw[1:end].decode("utf-8", "replace")
    serializer = _readers.get(name)
    if serializer is None:
        raise SerializationError(
            f"a stored value was written with serializer {name!r}, which is not configured in this process; "
            f"pass that serializer as config key 'serializer' (DBOSConfig(serializer=...)) or as "
            f"DBOSClient(serializer=...) to read it"
        )
    try:
        return serializer.deserialize(raw[end + 1 :].decode("utf-8"))
    except Exception as exc:
        raise SerializationError(
            f"serializer {name!r} failed to deserialize a stored value ({type(exc).__name__}: {exc})"
        ) from exc


def _json(data: bytes | str) -> Any:
    try:
        return _PORTABLE.deserialize(data)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SerializationError(
            f"a stored value is neither pickle, portable JSON nor a custom serializer's ({exc}); "
            "values written by plain SQL must be UTF-8 JSON text"
        ) from exc


def loads_inputs(data: bytes | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A workflow's stored arguments as (args, kwargs), whichever serializer wrote them."""
    if not data:
        return (), {}
    value = loads(data)
    if isinstance(value, tuple) and len(value) == 2:
        return tuple(value[0]), dict(value[1])
    if isinstance(value, dict):
        if "positionalArgs" in value or "namedArgs" in value:
            return tuple(value.get("positionalArgs") or ()), dict(value.get("namedArgs") or {})
        if "args" in value or "kwargs" in value:
            return tuple(value.get("args") or ()), dict(value.get("kwargs") or {})
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict):
        return tuple(value[0]), dict(value[1])
    if isinstance(value, list):  # portable inputs given as a bare array of positional arguments
        return tuple(value), {}
    raise SerializationError(
        'stored workflow inputs must be {"positionalArgs": [...], "namedArgs": {...}} in portable JSON, '
        f"got {type(value).__name__}"
    )


def loads_error(data: bytes) -> BaseException:
    value = loads(data)
    if isinstance(value, BaseException):
        return value
    if isinstance(value, dict):
        return serializers.error_from_portable(value)
    return TransactError(str(value))

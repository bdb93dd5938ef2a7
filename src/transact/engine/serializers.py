"""Serializer objects (DBOS's names): the default (pickle), portable JSON and the base of custom ones.

A serializer turns a value into text and back and has a stable ``name()``; stored values carry it
(``serialization.py`` frames them), so rows written before a switch still decode. Portable JSON is
plain JSON any language (or SQL) reads and writes: workflow inputs are ``{"positionalArgs": [...],
"namedArgs": {...}}``, errors ``{"name", "message", "code", "data"}``.

Must not import the facade.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import datetime
import decimal
import enum
import json
import pickle
import uuid
from abc import ABC, abstractmethod
from typing import Any

from transact.errors import ConfigError, SerializationError

PICKLE_NAME = "py_pickle"
PORTABLE_NAME = "portable_json"


class Serializer(ABC):
    """Base of custom serializers: ``serialize(value) -> str``, ``deserialize(text) -> value`` and
    a ``name()`` that never changes (stored with every value it wrote)."""

    @abstractmethod
    def serialize(self, data: Any) -> str: ...

    @abstractmethod
    def deserialize(self, serialized_data: str) -> Any: ...

    def name(self) -> str:
        """The class's qualified name by default, so a serializer written for DBOS 2.x (only
        ``serialize`` and ``deserialize``) works as it is. Renaming the class changes it: values
        already stored then decode only with a serializer whose ``name()`` returns the old name."""
        return type(self).__qualname__


class DefaultSerializer(Serializer):
    """Pickle, as base64 text. Configuring it changes nothing: Transact stores pickle by default
    (as raw bytes)."""

    def serialize(self, data: Any) -> str:
        return base64.b64encode(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")

    def deserialize(self, serialized_data: str) -> Any:
        return pickle.loads(base64.b64decode(serialized_data))

    def name(self) -> str:
        return PICKLE_NAME


def _to_json(value: Any) -> Any:
    """What plain JSON cannot hold, converted the way other languages read it."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not representable in portable JSON")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_to_json)


class _PortableJSON(Serializer):
    """Compact JSON every DBOS language reads; datetimes, decimals, sets, enums, dataclasses and
    pydantic models are converted to plain JSON (so they read back as strings, lists, dicts)."""

    @staticmethod
    def serialize(data: Any) -> str:
        return _ENCODER.encode(data)

    @staticmethod
    def deserialize(serialized_data: str) -> Any:
        return json.loads(serialized_data)

    @staticmethod
    def name() -> str:
        return PORTABLE_NAME


DBOSPortableJSON = _PortableJSON
"""The portable JSON serializer (usable as the class or an instance, as DBOS code does both)."""


class WorkflowSerializationFormat(str, enum.Enum):
    """``serialization_type`` of a workflow or an enqueue: PORTABLE stores its inputs, output and
    error as portable JSON (other languages or plain SQL start it and read its result); NATIVE uses
    the configured serializer."""

    PORTABLE = "portable"
    NATIVE = "native"


_PORTABLE_SPELLINGS = frozenset({"portable", PORTABLE_NAME, "json"})
_NATIVE_SPELLINGS = frozenset({"native", PICKLE_NAME, "pickle", "default"})


def is_portable_type(value: Any, what: str) -> bool:
    """``serialization_type`` -> portable or not; a clear error for anything else."""
    if value is None:
        return False
    text = value.value if isinstance(value, enum.Enum) else value
    if isinstance(text, str):
        if text.lower() in _PORTABLE_SPELLINGS:
            return True
        if text.lower() in _NATIVE_SPELLINGS:
            return False
    if (isinstance(value, type) and issubclass(value, _PortableJSON)) or isinstance(value, _PortableJSON):
        return True
    raise ConfigError(
        f"{what} serialization_type must be WorkflowSerializationFormat.PORTABLE ('portable') or "
        f"WorkflowSerializationFormat.NATIVE ('native'), got {value!r}"
    )


class PortableWorkflowError(Exception):
    """An error stored as portable JSON (written by another language, or by a portable workflow)
    whose ``name`` is no Python built-in exception: carries ``name``, ``message``, ``code``, ``data``."""

    def __init__(self, message: str, name: str = "Error", code: Any = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.code = code
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return (PortableWorkflowError, (self.message, self.name, self.code, self.data))

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.name not in ("", "Error") else self.message


def error_to_portable(exc: BaseException) -> dict[str, Any]:
    """The portable error shape of an exception (code and data only when JSON holds them)."""
    if isinstance(exc, PortableWorkflowError):
        out: dict[str, Any] = {"name": exc.name, "message": exc.message, "code": exc.code, "data": exc.data}
    else:
        code = getattr(exc, "code", None)
        if code is None:
            code = getattr(exc, "dbos_error_code", None)
        out = {"name": type(exc).__name__, "message": str(exc), "code": code, "data": getattr(exc, "data", None)}
    for key in ("code", "data"):
        try:
            _ENCODER.encode(out[key])
        except (TypeError, ValueError):
            out[key] = None
    return out


def error_from_portable(value: Any) -> BaseException:
    """A stored portable error as a Python exception: a built-in exception class when ``name``
    names one (``ValueError``...), else ``PortableWorkflowError``."""
    if not isinstance(value, dict):
        return PortableWorkflowError(str(value))
    name = str(value.get("name") or "Error")
    message = "" if value.get("message") is None else str(value.get("message"))
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and value.get("code") is None and value.get("data") is None:
        try:
            return cls(message)
        except Exception:
            pass
    return PortableWorkflowError(message, name, value.get("code"), value.get("data"))


def check(serializer: Any, what: str) -> Serializer | None:
    """A configured serializer: None for the default (pickle), else the object, checked."""
    if serializer is None:
        return None
    try:
        name = serializer.name() if callable(getattr(serializer, "name", None)) else None
    except Exception as exc:
        raise ConfigError(f"{what}: serializer.name() failed ({type(exc).__name__}: {exc})") from exc
    for method in ("serialize", "deserialize"):
        if not callable(getattr(serializer, method, None)):
            raise ConfigError(
                f"{what} must be a serializer with serialize(value) -> str, deserialize(text) and name() "
                f"(subclass transact.Serializer), got {serializer!r} (no {method}())"
            )
    if not isinstance(name, str) or not name or "\x00" in name or len(name.encode()) > 200:
        raise ConfigError(f"{what}: serializer.name() must return a short non-empty string, got {name!r}")
    if name == PICKLE_NAME:
        return None
    return serializer  # type: ignore[no-any-return]


__all__ = [
    "DBOSPortableJSON",
    "DefaultSerializer",
    "PortableWorkflowError",
    "SerializationError",
    "Serializer",
    "WorkflowSerializationFormat",
]

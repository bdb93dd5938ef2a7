"""Config dict + environment → frozen Settings. Errors name the key and the fix.

Every key the DBOS docs list for ``DBOSConfig`` is accepted, so a DBOS config runs unchanged:
a key transact has the feature for is applied; a key it has no feature for is logged once per
process (WARNING, naming the key) as having no effect, and only when its value asks for something
(``run_admin_server: False`` asks for nothing); ``serializer`` is checked here and installed by
DBOS (``engine/serialization.py``). An unknown key fails, naming the nearest known one.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from transact._lib import retention as _retention
from transact._lib.urls import kind_of, redact
from transact.errors import ConfigError

ENV_SYSTEM_DB = "TRANSACT_SYSTEM_DATABASE_URL"
# DBOS's conventional variable: the system database when neither TRANSACT_SYSTEM_DATABASE_URL nor
# the config (system_database_url, system_database_engine) names one.
ENV_DBOS_SYSTEM_DB = "DBOS_SYSTEM_DATABASE_URL"
ENV_EXECUTOR_ID = "TRANSACT_EXECUTOR_ID"
ENV_APP_VERSION = "TRANSACT_APP_VERSION"
# The environment variables DBOS Cloud and Conductor set; honoured after transact's own.
ENV_DBOS_EXECUTOR_ID = "DBOS__VMID"
ENV_DBOS_APP_VERSION = "DBOS__APPVERSION"

log = logging.getLogger("transact.config")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_URL_SCHEMES = (
    "sqlite:///",
    "postgresql://",
    "postgres://",
    "postgresql+psycopg://",
    "postgresql+psycopg2://",
)
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}
_SCHEMA = "transact"  # the Postgres schema of the system tables (storage/postgres.py)


class _DBOSConfigName(TypedDict):
    name: str


class DBOSConfig(_DBOSConfigName, total=False):
    """The config ``DBOS(config=...)`` takes: ``name`` is required, every other key optional.

    The first group are the keys the DBOS docs list (see ``_config.py`` for what each does here);
    the second are transact's own. A plain dict with the same keys works the same."""

    # -- keys from the DBOS docs ------------------------------------------------------------
    system_database_url: str | None
    application_database_url: str | None
    database_url: str | None  # deprecated DBOS synonym of application_database_url
    sys_db_name: str | None  # DBOS 1.x only
    sys_db_pool_size: int | None
    db_engine_kwargs: dict[str, Any] | None
    system_database_engine: Any  # a sqlalchemy.Engine; only its URL is used
    dbos_system_schema: str | None
    run_migrations: bool | None
    use_listen_notify: bool | None
    notification_listener_polling_interval_sec: float | None
    scheduler_polling_interval_sec: float | None
    application_version: str | None
    executor_id: str | None
    enable_patching: bool | None
    max_executor_threads: int | None
    log_level: str | None
    console_log_level: str | None
    otlp_log_level: str | None
    enable_otlp: bool | None
    otlp_traces_endpoints: list[str] | None
    otlp_logs_endpoints: list[str] | None
    otlp_attributes: dict[str, str] | None
    run_admin_server: bool | None
    admin_port: int | None
    conductor_key: str | None
    conductor_url: str | None
    serializer: Any  # None: pickle; else a serializer object (DBOS installs it)
    # -- transact's own keys ----------------------------------------------------------------
    app_version: str | None
    lease_seconds: float
    heartbeat_seconds: float
    max_workflow_threads: int
    system_database_pool_size: int
    database_retry_timeout_seconds: float | None
    shutdown_timeout_seconds: float
    pin_app_version: bool
    queue_poll_seconds: float
    local_liveness_check: bool
    install_signal_handlers: bool
    group_commit: bool
    retention: dict[str, Any] | None  # background garbage collection (_lib/retention.py)
    sqlite_synchronous: str  # "NORMAL" (default) or "FULL"
    console_port: int | None  # serve the web console on 127.0.0.1:PORT inside the launched app


def _given(value: Any) -> bool:
    return value is not None and value is not False and value != [] and value != {} and value != ""


# Documented DBOS keys transact has no feature for: (does this value ask for something?, why).
_NO_EFFECT: dict[str, tuple[Callable[[Any], bool], str]] = {
    "run_admin_server": (_given, "transact runs no admin HTTP server (use the `transact` command or its web console)"),
    "admin_port": (_given, "transact runs no admin HTTP server"),
    "conductor_key": (_given, "transact does not connect to DBOS Conductor"),
    "conductor_url": (_given, "transact does not connect to DBOS Conductor"),
    "use_listen_notify": (
        lambda v: v is False,
        "transact always listens for Postgres notifications (and polls as a safety net)",
    ),
    "notification_listener_polling_interval_sec": (_given, "transact's safety-net polls have fixed intervals"),
    "sys_db_name": (
        _given,
        "the system database is system_database_url (default: the SQLite file <name>.sqlite); "
        "put the database name in that URL",
    ),
}

# Keys transact applies (the DBOS ones and its own); see load_settings.
_APPLIED = {
    "name",
    "system_database_url",
    "application_database_url",
    "database_url",
    "sys_db_pool_size",
    "db_engine_kwargs",
    "system_database_engine",
    "run_migrations",
    "dbos_system_schema",  # Postgres schema of the system tables (system_schema below)
    "scheduler_polling_interval_sec",
    "application_version",
    "enable_patching",  # DBOS.patch works either way; True fixes the default app version
    "executor_id",
    "max_executor_threads",
    "log_level",
    "console_log_level",
    "serializer",  # every stored value is written with it (engine/serialization.py)
    "app_version",
    "lease_seconds",
    "heartbeat_seconds",
    "max_workflow_threads",
    "system_database_pool_size",
    "database_retry_timeout_seconds",
    "shutdown_timeout_seconds",
    "pin_app_version",
    "queue_poll_seconds",
    "local_liveness_check",
    "install_signal_handlers",
    "group_commit",
    "retention",
    "sqlite_synchronous",
    "console_port",
    "enable_otlp",
    "otlp_traces_endpoints",
    "otlp_logs_endpoints",
    "otlp_attributes",
    "otlp_log_level",
}
KNOWN_KEYS = frozenset(_APPLIED | set(_NO_EFFECT))

_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class Settings:
    name: str
    system_database_url: str
    application_database_url: str | None
    executor_id: str
    executor_id_fixed: bool
    app_version: str | None
    log_level: str | None
    lease_seconds: float
    heartbeat_seconds: float
    max_workflow_threads: int
    pool_size: int
    retry_timeout_s: float | None
    shutdown_timeout_s: float
    pin_app_version: bool
    queue_poll_seconds: float | None  # None: 10 s on Postgres (pushed wake-ups), 1 s on SQLite
    local_liveness_check: bool = True
    install_signal_handlers: bool = True
    group_commit: bool = True
    run_migrations: bool = True  # False: launch checks the schema is there and never creates it
    sqlite_synchronous: str = "NORMAL"  # SQLite PRAGMA synchronous: NORMAL or FULL
    scheduler_poll_seconds: float | None = None  # None: the scheduler's own safety-net poll
    otlp: OtlpSettings | None = None  # None: no tracing (enable_otlp unset or False)
    system_schema: str | None = None  # Postgres schema of the system tables; None: "transact"
    retention: _retention.RetentionSettings | None = None  # None: no background garbage collection
    console_port: int | None = None  # None: no in-process web console


@dataclass(frozen=True)
class OtlpSettings:
    """OpenTelemetry export (``enable_otlp``); endpoints apply only when the application has set
    no provider of its own."""

    traces_endpoints: tuple[str, ...] = ()
    logs_endpoints: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()
    log_level: int = logging.NOTSET  # otlp_log_level: the least severe record exported (NOTSET: all)


def _otlp(config: Mapping[str, Any]) -> OtlpSettings | None:
    endpoints = {}
    for key in ("otlp_traces_endpoints", "otlp_logs_endpoints"):
        value = config.get(key)
        if value is None:
            value = []
        if isinstance(value, str) or not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"config key {key!r} must be a list of URLs like ['http://localhost:4318/v1/traces'], got {value!r}"
            )
        endpoints[key] = tuple(value)
    attributes = config.get("otlp_attributes") or {}
    if not isinstance(attributes, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise ConfigError(f"config key 'otlp_attributes' must be a dict of strings to strings, got {attributes!r}")
    level = config.get("otlp_log_level")
    log_level = logging.NOTSET if level is None else _level("otlp_log_level", level)
    if not _flag(config, "enable_otlp", False):
        return None
    return OtlpSettings(
        endpoints["otlp_traces_endpoints"], endpoints["otlp_logs_endpoints"], tuple(attributes.items()), log_level
    )


def _console_port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(
            f"config key 'console_port' must be a TCP port number (0-65535; 0: any free port), got {value!r}"
        )
    return value


def _number(config: Mapping[str, Any], key: str, default: float, *, minimum: float = 0.0) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= minimum:
        raise ConfigError(f"config key {key!r} must be a number greater than {minimum}, got {value!r}")
    return float(value)


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"config key {key!r} must be a positive int, got {value!r}")
    return value


def _flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"config key {key!r} must be True or False, got {value!r}")
    return value


def _url(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(_URL_SCHEMES):
        shown = redact(value) if isinstance(value, str) else value
        what = f"environment variable {key}" if key.isupper() else f"config key {key!r}"
        raise ConfigError(
            f"{what} must be a database URL like 'sqlite:///app.sqlite' or "
            f"'postgresql://user:password@host:5432/db', got {shown!r}"
        )
    return value


def _one_of(config: Mapping[str, Any], *keys: str, secret: bool = False) -> tuple[str, Any] | None:
    """The value set under any of these synonymous keys (None counts as unset); a ConfigError
    when two of them are set to different values."""
    given = [(key, config[key]) for key in keys if config.get(key) is not None]
    for key, value in given[1:]:
        if value != given[0][1]:
            first, other = given[0][0], key
            detail = "" if secret else f": {given[0][1]!r} and {value!r}"
            raise ConfigError(f"config keys {first!r} and {other!r} name the same setting but differ{detail}; set one")
    return given[0] if given else None


def _synchronous(value: Any) -> str:
    """SQLite's commit durability: NORMAL survives a process crash but may lose the last commits
    on power loss or an OS crash; FULL syncs every commit and survives both."""
    if value is None:
        return "NORMAL"
    mode = value.upper() if isinstance(value, str) else None
    if mode is None or mode not in ("NORMAL", "FULL"):
        raise ConfigError(f"config key 'sqlite_synchronous' must be 'NORMAL' or 'FULL', got {value!r}")
    return mode


def _level(key: str, value: Any) -> int:
    level = _LEVELS.get(value.upper()) if isinstance(value, str) else None
    if level is None:
        raise ConfigError(f"config key {key!r} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return level


def _check_keys(config: Mapping[str, Any]) -> None:
    for key in config:
        if not isinstance(key, str):
            raise ConfigError(f"config keys must be strings, got {key!r}")
        if key in KNOWN_KEYS:
            continue
        near = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else f"known keys are: {', '.join(sorted(KNOWN_KEYS))}"
        raise ConfigError(f"unknown config key {key!r}; {hint}")


def _check_serializer(value: Any) -> None:
    """A serializer object: ``serialize(value) -> str``, ``deserialize(text)`` and ``name()``."""
    if value is None:
        return
    missing = [m for m in ("serialize", "deserialize", "name") if not callable(getattr(value, m, None))]
    if missing:
        raise ConfigError(
            f"config key 'serializer' must be a serializer with serialize(value) -> str, deserialize(text) and "
            f"name() (subclass transact.Serializer), got {type(value).__name__} (no {missing[0]}())"
        )


def _system_url(config: Mapping[str, Any], name: str, notes: list[tuple[str, str]]) -> str:
    """The first of: TRANSACT_SYSTEM_DATABASE_URL, config ``system_database_url``, config
    ``system_database_engine``, DBOS_SYSTEM_DATABASE_URL, the SQLite file ``<name>.sqlite``."""
    engine = config.get("system_database_engine")
    env_url = os.environ.get(ENV_SYSTEM_DB)
    if env_url:
        url = _url(ENV_SYSTEM_DB, env_url)
    elif config.get("system_database_url") is not None:
        url = _url("system_database_url", config["system_database_url"])
    elif engine is not None:
        return _engine_url(engine, notes)
    elif os.environ.get(ENV_DBOS_SYSTEM_DB):
        return _url(ENV_DBOS_SYSTEM_DB, os.environ[ENV_DBOS_SYSTEM_DB])
    else:
        return f"sqlite:///{os.path.join(os.getcwd(), name + '.sqlite')}"
    if engine is not None:
        notes.append(
            ("system_database_engine", _no_effect("system_database_engine", f"the system database is {redact(url)}"))
        )
    return url


def _engine_url(engine: Any, notes: list[tuple[str, str]]) -> str:
    """A SQLAlchemy engine's URL: transact opens its own connections to that database."""
    url = getattr(engine, "url", None)
    if url is None:
        raise ConfigError(f"config key 'system_database_engine' must be a SQLAlchemy Engine, got {engine!r}")
    render = getattr(url, "render_as_string", None)
    text = render(hide_password=False) if callable(render) else str(url)
    notes.append(
        (
            "system_database_engine",
            "config key 'system_database_engine': only its URL is used; transact opens its own "
            "connections, so the engine's pool and connect arguments do not apply",
        )
    )
    return _url("system_database_engine", text)


def _pool_size(config: Mapping[str, Any], notes: list[tuple[str, str]]) -> int:
    kwargs = config.get("db_engine_kwargs")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ConfigError(
            f"config key 'db_engine_kwargs' must be a dict of SQLAlchemy engine arguments, got {kwargs!r}"
        )
    others = sorted(k for k in kwargs or {} if k != "pool_size")
    if others:
        notes.append(
            ("db_engine_kwargs", f"config key 'db_engine_kwargs': transact applies only 'pool_size', not {others}")
        )
    chosen = _one_of(config, "system_database_pool_size", "sys_db_pool_size")
    if chosen is not None:
        return _count(*chosen)
    if kwargs and kwargs.get("pool_size") is not None:
        return _count("db_engine_kwargs['pool_size']", kwargs["pool_size"])
    return 10


def _log_level(config: Mapping[str, Any]) -> str | None:
    """``log_level`` sets the 'transact' logger; transact has no console handler of its own (the
    application's handlers print), so ``console_log_level`` filters at the logger too: the
    stricter of the two wins, which is what a DBOS console shows."""
    levels = [_level(key, config[key]) for key in ("log_level", "console_log_level") if config.get(key) is not None]
    return logging.getLevelName(max(levels)) if levels else None


def _no_effect(key: str, why: str) -> str:
    return f"config key {key!r} has no effect in transact: {why}"


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def system_schema(value: Any, what: str, url: str) -> str | None:
    """The Postgres schema of the system tables; None for the default (``transact``). DBOS's
    default name ``dbos`` means the default too, so code written for DBOS that names it finds the
    tables an application without the key created. SQLite has no schemas: a schema given for it is
    ignored with a warning (a config often serves SQLite in tests and Postgres in production)."""
    if value is None or value in ("dbos", _SCHEMA):
        return None
    if not isinstance(value, str) or not _SCHEMA_NAME.fullmatch(value):
        raise ConfigError(
            f"{what} must be a lower-case Postgres schema name (letters, digits, underscores; at most 63; "
            f"not starting with a digit), got {value!r}"
        )
    if kind_of(url) == "sqlite":
        log.warning("%s=%r is ignored: SQLite has no schemas (it applies to a Postgres system database)", what, value)
        return None
    return value


def check_dbos_arguments(**given: Any) -> None:
    """``DBOS(conductor_key=..., conductor_url=...)``: accepted as DBOS accepts them, checked, and
    logged once as having no effect, as the config keys of the same names are."""
    notes = []
    for key, value in given.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"DBOS({key}=...) must be a string or None, got {value!r}")
        asks, why = _NO_EFFECT[key]
        if asks(value):
            notes.append((key, f"DBOS argument {key!r} has no effect in transact: {why}"))
    _warn_once(notes)


def _warn_once(notes: list[tuple[str, str]]) -> None:
    """Log each note at WARNING, once per process and key."""
    for key, message in notes:
        with _warned_lock:
            if key in _warned:
                continue
            _warned.add(key)
        log.warning("%s", message)


def load_settings(config: Mapping[str, Any] | None) -> Settings:
    if config is None:
        raise ConfigError("DBOS(config=...) needs a config dict with at least {'name': 'my-app'}")
    if not isinstance(config, Mapping):
        raise ConfigError(f"DBOS config must be a dict, got {type(config).__name__}")
    _check_keys(config)
    _check_serializer(config.get("serializer"))
    name = config.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"config key 'name' must be 1-100 letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), got {name!r}"
        )
    notes = [(key, _no_effect(key, why)) for key, (asks, why) in _NO_EFFECT.items() if asks(config.get(key))]
    sys_url = _system_url(config, name, notes)
    app = _one_of(config, "application_database_url", "database_url", secret=True)
    app_url = _url(*app) if app is not None else None
    defaulted = not (os.environ.get(ENV_SYSTEM_DB) or os.environ.get(ENV_DBOS_SYSTEM_DB)) and all(
        config.get(key) is None for key in ("system_database_url", "system_database_engine")
    )
    if app is not None and app[0] == "database_url" and defaulted and kind_of(app[1]) == "postgres":
        # DBOS 1.x kept workflows next to this database; transact's default is a local file.
        notes.append(
            (
                "database_url",
                f"config key 'database_url' names the application database only; workflows are kept "
                f"in {redact(sys_url)} (set system_database_url to keep them in Postgres)",
            )
        )

    executor_id = config.get("executor_id") or os.environ.get(ENV_EXECUTOR_ID) or os.environ.get(ENV_DBOS_EXECUTOR_ID)
    if not isinstance(executor_id, str | None):
        raise ConfigError(f"config key 'executor_id' must be a string, got {executor_id!r}")
    fixed = bool(executor_id)
    if not executor_id:
        executor_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    version_key, version = _one_of(config, "application_version", "app_version") or ("", None)
    if not isinstance(version, str | None):
        raise ConfigError(f"config key {version_key!r} must be a string, got {version!r}")
    version = version or os.environ.get(ENV_APP_VERSION) or os.environ.get(ENV_DBOS_APP_VERSION)
    if not version and _flag(config, "enable_patching", False):
        # As in DBOS: patched code and the code before it share one version, so pinned recovery
        # still finds old runs. DBOS.patch itself works whether or not this is set.
        version = "PATCHING_ENABLED"

    lease = _number(config, "lease_seconds", 30.0)
    heartbeat = _number(config, "heartbeat_seconds", min(10.0, lease / 3))
    if heartbeat >= lease:
        raise ConfigError(
            f"config key 'heartbeat_seconds' ({heartbeat}) must be smaller than 'lease_seconds' ({lease})"
        )
    threads = _one_of(config, "max_workflow_threads", "max_executor_threads")
    retry = config.get("database_retry_timeout_seconds")
    if retry is not None:
        retry = _number(config, "database_retry_timeout_seconds", 0)
    settings = Settings(
        name=name,
        system_database_url=sys_url,
        application_database_url=app_url,
        executor_id=executor_id,
        executor_id_fixed=fixed,
        app_version=version or None,
        log_level=_log_level(config),
        lease_seconds=lease,
        heartbeat_seconds=heartbeat,
        max_workflow_threads=_count(*threads) if threads else 512,
        pool_size=_pool_size(config, notes),
        retry_timeout_s=retry,
        shutdown_timeout_s=_number(config, "shutdown_timeout_seconds", 10.0, minimum=-1),
        pin_app_version=bool(config.get("pin_app_version", False)),
        queue_poll_seconds=_number(config, "queue_poll_seconds", 1.0) if "queue_poll_seconds" in config else None,
        local_liveness_check=bool(config.get("local_liveness_check", True)),
        install_signal_handlers=bool(config.get("install_signal_handlers", True)),
        group_commit=bool(config.get("group_commit", True)),
        run_migrations=_flag(config, "run_migrations", True),
        sqlite_synchronous=_synchronous(config.get("sqlite_synchronous")),
        scheduler_poll_seconds=(
            _number(config, "scheduler_polling_interval_sec", 1.0)
            if config.get("scheduler_polling_interval_sec") is not None
            else None
        ),
        otlp=_otlp(config),
        retention=_retention.parse(config.get("retention")),
        console_port=_console_port(config.get("console_port")),
        system_schema=system_schema(config.get("dbos_system_schema"), "config key 'dbos_system_schema'", sys_url),
    )
    if settings.log_level:  # before the notes below, so a quieter level applies to them too
        logging.getLogger("transact").setLevel(settings.log_level)
    _warn_once(notes)  # only for a config that was accepted
    return settings

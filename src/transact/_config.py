"""Config dict + environment → frozen Settings. Errors name the key and the fix."""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transact.errors import ConfigError

ENV_SYSTEM_DB = "TRANSACT_SYSTEM_DATABASE_URL"
ENV_EXECUTOR_ID = "TRANSACT_EXECUTOR_ID"
ENV_APP_VERSION = "TRANSACT_APP_VERSION"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_URL_SCHEMES = (
    "sqlite:///",
    "postgresql://",
    "postgres://",
    "postgresql+psycopg://",
    "postgresql+psycopg2://",
)

# Keys from the DBOS config model that Transact accepts (some are only informative here).
_KNOWN = {
    "name",
    "system_database_url",
    "application_database_url",
    "database_url",
    "executor_id",
    "app_version",
    "application_version",
    "log_level",
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
    # accepted for compatibility, no effect
    "run_admin_server",
    "admin_port",
    "enable_otlp",
    "otlp_traces_endpoints",
    "otlp_logs_endpoints",
    "otlp_attributes",
    "sys_db_name",
    "dbos_system_schema",
    "conductor_key",
    "serializer",
}


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


def _number(config: Mapping[str, Any], key: str, default: float, *, minimum: float = 0.0) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= minimum:
        raise ConfigError(f"config key {key!r} must be a number greater than {minimum}, got {value!r}")
    return float(value)


def _url(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(_URL_SCHEMES):
        raise ConfigError(
            f"config key {key!r} must be a database URL like 'sqlite:///app.sqlite' or "
            f"'postgresql://user:password@host:5432/db', got {value!r}"
        )
    return value


def load_settings(config: Mapping[str, Any] | None) -> Settings:
    if config is None:
        raise ConfigError("DBOS(config=...) needs a config dict with at least {'name': 'my-app'}")
    if not isinstance(config, Mapping):
        raise ConfigError(f"DBOS config must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - _KNOWN)
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}; known keys are: {', '.join(sorted(_KNOWN))}")
    name = config.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"config key 'name' must be 1-100 letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), got {name!r}"
        )
    env_url = os.environ.get(ENV_SYSTEM_DB)
    if env_url:
        sys_url = _url(ENV_SYSTEM_DB, env_url)
    elif config.get("system_database_url") is not None:
        sys_url = _url("system_database_url", config["system_database_url"])
    else:
        sys_url = f"sqlite:///{os.path.join(os.getcwd(), name + '.sqlite')}"
    app_key = "application_database_url" if "application_database_url" in config else "database_url"
    app_url = config.get(app_key)
    if app_url is not None:
        app_url = _url(app_key, app_url)

    executor_id = config.get("executor_id") or os.environ.get(ENV_EXECUTOR_ID) or os.environ.get("DBOS__VMID")
    fixed = bool(executor_id)
    if executor_id is not None and not isinstance(executor_id, str):
        raise ConfigError(f"config key 'executor_id' must be a string, got {executor_id!r}")
    if not executor_id:
        executor_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    version = config.get("app_version") or config.get("application_version") or os.environ.get(ENV_APP_VERSION)
    if version is not None and not isinstance(version, str):
        raise ConfigError(f"config key 'app_version' must be a string, got {version!r}")

    lease = _number(config, "lease_seconds", 30.0)
    heartbeat = _number(config, "heartbeat_seconds", min(10.0, lease / 3))
    if heartbeat >= lease:
        raise ConfigError(
            f"config key 'heartbeat_seconds' ({heartbeat}) must be smaller than 'lease_seconds' ({lease})"
        )
    threads = config.get("max_workflow_threads", 512)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"config key 'max_workflow_threads' must be a positive int, got {threads!r}")
    pool = config.get("system_database_pool_size", 10)
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ConfigError(f"config key 'system_database_pool_size' must be a positive int, got {pool!r}")
    retry = config.get("database_retry_timeout_seconds")
    if retry is not None:
        retry = _number(config, "database_retry_timeout_seconds", 0)
    log_level = config.get("log_level")
    if log_level is not None and log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"config key 'log_level' must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
    return Settings(
        name=name,
        system_database_url=sys_url,
        application_database_url=app_url,
        executor_id=executor_id,
        executor_id_fixed=fixed,
        app_version=version,
        log_level=log_level,
        lease_seconds=lease,
        heartbeat_seconds=heartbeat,
        max_workflow_threads=threads,
        pool_size=pool,
        retry_timeout_s=retry,
        shutdown_timeout_s=_number(config, "shutdown_timeout_seconds", 10.0, minimum=-1),
        pin_app_version=bool(config.get("pin_app_version", False)),
        queue_poll_seconds=_number(config, "queue_poll_seconds", 1.0) if "queue_poll_seconds" in config else None,
        local_liveness_check=bool(config.get("local_liveness_check", True)),
        install_signal_handlers=bool(config.get("install_signal_handlers", True)),
        group_commit=bool(config.get("group_commit", True)),
    )

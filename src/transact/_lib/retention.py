"""The ``retention`` config value: checked once at ``DBOS(config=...)``, read by engine/retention.py.

Leaf module: imports nothing from transact but errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transact.errors import ConfigError

KEYS = ("finished_for_days", "max_finished", "interval_seconds", "batch_size", "pace")
DEFAULT_INTERVAL_S = 300.0


@dataclass(frozen=True)
class RetentionSettings:
    """Background garbage collection of finished workflows."""

    finished_for_days: float | None  # delete workflows that finished longer ago than this
    max_finished: int | None  # keep at most this many finished workflows, the most recently finished
    interval_seconds: float = DEFAULT_INTERVAL_S  # how often a collection runs (one process of a fleet)
    # Workflows per transaction, and the rest after each batch as a fraction of its time: the
    # trade between how fast history goes and how much the live workload feels it. None: the
    # collector's defaults (engine/retention.py).
    batch_size: int | None = None
    pace: float | None = None


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value == value  # not NaN


def parse(value: Any) -> RetentionSettings | None:
    """The settings for config key ``retention`` (None: unset); a ConfigError naming what is wrong."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value or any(k not in KEYS for k in value):
        raise ConfigError(
            f"config key 'retention' must be a dict with keys among {', '.join(KEYS)} "
            f"(e.g. {{'finished_for_days': 30, 'max_finished': 1000000}}), got {value!r}"
        )
    days, keep, every, batch, pace = (value.get(k) for k in KEYS)
    if days is not None and not (_number(days) and 0 <= days < 1e6):
        raise ConfigError(f"retention 'finished_for_days' must be a number of days >= 0, got {days!r}")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise ConfigError(f"retention 'max_finished' must be an int >= 0, got {keep!r}")
    if every is not None and not (_number(every) and 0 < every < 1e9):
        raise ConfigError(f"retention 'interval_seconds' must be a number of seconds > 0, got {every!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 100_000):
        raise ConfigError(
            f"retention 'batch_size' must be an int from 1 to 100000 (workflows per transaction), got {batch!r}"
        )
    if pace is not None and not (_number(pace) and 0 <= pace <= 1000):
        raise ConfigError(
            f"retention 'pace' must be a number >= 0 (rest after each batch, as a fraction of its time), got {pace!r}"
        )
    if days is None and keep is None:
        raise ConfigError("config key 'retention' needs 'finished_for_days' or 'max_finished' (or both)")
    return RetentionSettings(
        float(days) if days is not None else None,
        keep,
        float(every) if every is not None else DEFAULT_INTERVAL_S,
        batch,
        float(pace) if pace is not None else None,
    )

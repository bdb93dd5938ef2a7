"""Application versions (``protocol.VersionStore``): one row per (application, version), the
latest being the highest ``version_timestamp``. Must not import the engine or the facade."""

from __future__ import annotations

from typing import Any

from transact.storage._base import DriverBase
from transact.storage.versions_protocol import VersionRow

__all__ = ["VersionRow", "VersionSql"]

_COLUMNS = "application_name, version_name, version_id, version_timestamp, created_at"

# A relaunch of a registered version keeps its row: re-registering must not promote it.
_REGISTER = (
    f"INSERT INTO application_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (application_name, version_name) DO NOTHING"
)
_LATEST = (
    f"SELECT {_COLUMNS} FROM application_versions WHERE application_name = ?"
    " ORDER BY version_timestamp DESC, version_name DESC LIMIT 1"
)
# One statement: the new timestamp is read and written under the row lock of the promoted row,
# past every other version of the application even when this process's clock is behind.
_PROMOTE = (
    "UPDATE application_versions SET version_timestamp = (SELECT CASE WHEN max(o.version_timestamp) >= ?"
    " THEN max(o.version_timestamp) + 1 ELSE ? END FROM application_versions o WHERE o.application_name = ?)"
    f" WHERE application_name = ? AND version_name = ? RETURNING {_COLUMNS}"
)


def _row(r: Any) -> VersionRow:
    return VersionRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]))


class VersionSql(DriverBase):
    def version_register(self, row: VersionRow) -> bool:
        params = (row.application_name, row.version_name, row.version_id, row.version_timestamp, row.created_at)
        return self.write(lambda tx: tx.run(_REGISTER, params), single=True) == 1

    def version_list(self, *, application_name: str | None) -> list[VersionRow]:
        sql = f"SELECT {_COLUMNS} FROM application_versions"
        params: tuple[str, ...] = ()
        if application_name is not None:
            sql += " WHERE application_name = ?"
            params = (application_name,)
        sql += " ORDER BY version_timestamp DESC, version_name DESC"
        return [_row(r) for r in self.read(lambda tx: tx.all(sql, params))]

    def version_latest(self, *, application_name: str) -> VersionRow | None:
        found = self.read(lambda tx: tx.one(_LATEST, (application_name,)))
        return None if found is None else _row(found)

    def version_promote(self, *, application_name: str, version_name: str, now: int) -> VersionRow | None:
        params = (now, now, application_name, application_name, version_name)
        found = self.write(lambda tx: tx.one(_PROMOTE, params), single=True)
        return None if found is None else _row(found)

"""Cron schedules (declared in code, or created at run time by operators). Must not import the engine.

A row holds the definition, the ACTIVE/PAUSED state and ``last_tick_at``: the latest tick that
was fired (or the instant the schedule was created or resumed), which is where a backfilling
scheduler resumes after downtime.
"""

from __future__ import annotations

from collections.abc import Sequence

from transact._lib.states import Hint
from transact.storage._base import DriverBase, Tx
from transact.storage.errors import Conflict
from transact.storage.rows import SCHEDULE_COLUMNS, ScheduleRow

_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
_INSERT = f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

# Declared schedules: the code is the truth for the definition; the operator's pause and the
# fired-ticks progress survive redeploys, so state and last_tick_at are kept. A row another
# application owns is left alone (nothing returned); an unowned one becomes the declarer's.
_UPSERT_DECLARED = (
    f"{_INSERT} ON CONFLICT (schedule_name) DO UPDATE SET workflow_name = excluded.workflow_name, "
    "cron = excluded.cron, timezone = excluded.timezone, backfill = excluded.backfill, dynamic = excluded.dynamic, "
    "context = excluded.context, queue_name = excluded.queue_name, application_name = excluded.application_name, "
    "updated_at = excluded.updated_at WHERE schedules.application_name IS NULL "
    f"OR schedules.application_name = excluded.application_name RETURNING {SCHEDULE_COLUMNS}"
)

# Applied schedules: a name already taken keeps its row (state and progress included) unless its
# definition differs, which is then replaced in place.
_INSERT_NEW = f"{_INSERT} ON CONFLICT (schedule_name) DO NOTHING"
_REDEFINE = (
    "UPDATE schedules SET workflow_name = ?, cron = ?, timezone = ?, backfill = ?, context = ?, queue_name = ?, "
    "application_name = COALESCE(application_name, ?), updated_at = ? WHERE schedule_name = ?"
)

# Only ever moves forward: several processes fire the same ticks and race on this write.
_ADVANCE = (
    "UPDATE schedules SET last_tick_at = ? WHERE schedule_name = ? AND (last_tick_at IS NULL OR last_tick_at < ?)"
)

# SET expressions read the row's values from before the update, so CASE sees the old state.
_RESUME = (
    "UPDATE schedules SET state = 'ACTIVE', updated_at = ?, "
    "last_tick_at = CASE WHEN state = 'ACTIVE' THEN last_tick_at ELSE ? END "
    f"WHERE schedule_name = ? RETURNING {SCHEDULE_COLUMNS}"
)
_PAUSE = f"UPDATE schedules SET state = ?, updated_at = ? WHERE schedule_name = ? RETURNING {SCHEDULE_COLUMNS}"


def to_schedule(row: Sequence[object]) -> ScheduleRow:
    name, workflow, cron, tz, state, backfill, dynamic, last, created, updated, context, queue, app = row
    return ScheduleRow(
        schedule_name=str(name),
        workflow_name=str(workflow),
        cron=str(cron),
        timezone=None if tz is None else str(tz),
        state=str(state),
        backfill=bool(backfill),  # SQLite stores 0/1
        dynamic=bool(dynamic),
        last_tick_at=None if last is None else int(last),  # type: ignore[call-overload]
        created_at=int(created),  # type: ignore[call-overload]
        updated_at=int(updated),  # type: ignore[call-overload]
        context=None if context is None else bytes(context),  # type: ignore[call-overload]
        queue_name=None if queue is None else str(queue),
        application_name=None if app is None else str(app),
    )


def _params(row: ScheduleRow) -> tuple[object, ...]:
    return (
        row.schedule_name,
        row.workflow_name,
        row.cron,
        row.timezone,
        row.state,
        row.backfill,
        row.dynamic,
        row.last_tick_at,
        row.created_at,
        row.updated_at,
        row.context,
        row.queue_name,
        row.application_name,
    )


def foreign_owner(stored: ScheduleRow, application_name: str | None) -> str | None:
    """The application other than ``application_name`` that owns ``stored``, if any."""
    owner = stored.application_name
    return owner if owner is not None and owner != application_name else None


def _owned_elsewhere(stored: ScheduleRow, application_name: str | None) -> Conflict:
    return Conflict(
        f"schedule {stored.schedule_name!r} belongs to application {stored.application_name!r}, not to "
        f"{application_name!r}: schedule names are unique across the applications sharing a system database; "
        "choose another name"
    )


def _definition(row: ScheduleRow) -> tuple[object, ...]:
    return (row.workflow_name, row.cron, row.timezone, row.backfill, row.context, row.queue_name)


class ScheduleSql(DriverBase):
    def schedule_create(self, row: ScheduleRow) -> bool:
        """Insert a new schedule. False when the name is taken (nothing is written). Round trips: 1."""
        try:
            self.write(lambda tx: tx.run(_INSERT, _params(row)), single=True)
        except Conflict:
            return False
        self.hint(Hint.SCHEDULE, row.schedule_name)
        return True

    def schedule_declare(self, row: ScheduleRow) -> ScheduleRow:
        """Insert or refresh a schedule declared in code; returns the stored row. Raises Conflict
        when another application owns the name. Round trips: 1 (2 on that conflict)."""
        stored = self.write(lambda tx: tx.one(_UPSERT_DECLARED, _params(row)), single=True)
        if stored is None:
            found = self.schedule_get(row.schedule_name)
            if found is None:  # deleted in between: declare again
                return self.schedule_declare(row)
            raise _owned_elsewhere(found, row.application_name)
        return to_schedule(stored)

    def schedule_apply(self, rows: Sequence[ScheduleRow]) -> list[str]:
        """Create or redefine schedules in one transaction; returns the names written (new or
        changed). A name already held by a schedule declared in code, or owned by another
        application, raises Conflict and writes nothing. Concurrent calls with the same rows end with the same rows. Round trips: 2 + 1 per
        name taken (+ 1 per redefinition)."""

        def unit(tx: Tx) -> list[str]:
            written: list[str] = []
            for row in sorted(rows, key=lambda r: r.schedule_name):  # one lock order for every caller
                if tx.run(_INSERT_NEW, _params(row)) == 1:
                    written.append(row.schedule_name)
                    continue
                found = tx.one(f"{_SELECT} WHERE schedule_name = ?", (row.schedule_name,))
                if found is None:
                    continue  # deleted since the insert was refused: nothing to redefine
                stored = to_schedule(found)
                if foreign_owner(stored, row.application_name) is not None:
                    raise _owned_elsewhere(stored, row.application_name)
                if not stored.dynamic:
                    raise Conflict(f"schedule {row.schedule_name!r} is declared in code with @DBOS.scheduled")
                if _definition(stored) != _definition(row):
                    tx.run(_REDEFINE, (*_definition(row), row.application_name, row.updated_at, row.schedule_name))
                    written.append(row.schedule_name)
            return written

        written = self.write(unit) if rows else []
        for name in written:
            self.hint(Hint.SCHEDULE, name)
        return written

    def schedule_get(self, schedule_name: str) -> ScheduleRow | None:
        row = self.read(lambda tx: tx.one(f"{_SELECT} WHERE schedule_name = ?", (schedule_name,)))
        return to_schedule(row) if row is not None else None

    def schedule_list(
        self,
        *,
        state: str | None = None,
        workflow_name: str | None = None,
        name_prefix: str | None = None,
    ) -> list[ScheduleRow]:
        """Schedules in name order, optionally filtered. Round trips: 1."""
        clauses: list[str] = []
        params: list[object] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        if workflow_name is not None:
            clauses.append("workflow_name = ?")
            params.append(workflow_name)
        if name_prefix is not None:
            # substr instead of LIKE: no wildcard escaping, and the SQL text stays free of '%'.
            clauses.append("substr(schedule_name, 1, ?) = ?")
            params.extend((len(name_prefix), name_prefix))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.read(lambda tx: tx.all(f"{_SELECT}{where} ORDER BY schedule_name", tuple(params)))
        return [to_schedule(r) for r in rows]

    def schedule_set_state(self, schedule_name: str, state: str, now: int) -> ScheduleRow | None:
        """Pause or resume. Resuming restarts the progress mark at ``now``, so ticks that fell
        while paused are never backfilled. Returns the row, or None for an unknown name."""

        sql, params = (
            (_RESUME, (now, now, schedule_name)) if state == "ACTIVE" else (_PAUSE, (state, now, schedule_name))
        )

        def unit(tx: Tx) -> ScheduleRow | None:
            row = tx.one(sql, params)
            return to_schedule(row) if row is not None else None

        updated = self.write(unit, single=True)
        if updated is not None:
            self.hint(Hint.SCHEDULE, schedule_name)
        return updated

    def schedule_delete(self, schedule_name: str) -> bool:
        deleted = self.write(
            lambda tx: tx.run("DELETE FROM schedules WHERE schedule_name = ?", (schedule_name,)), single=True
        )
        if deleted:
            self.hint(Hint.SCHEDULE, schedule_name)
        return deleted == 1

    def schedule_advance(self, schedule_name: str, tick_at: int) -> None:
        """Record that the tick at ``tick_at`` (epoch ms) was fired. Round trips: 1."""
        self.write(lambda tx: tx.run(_ADVANCE, (tick_at, schedule_name, tick_at)), single=True)

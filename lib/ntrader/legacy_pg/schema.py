"""The legacy bars table's shape: the column mapping, its inspection and the shared SQL pieces.

Identifiers (table, columns) go through ``psycopg.sql.Identifier`` (``schema.table`` is split on
'.'); filter values are always bound parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ntrader.errors import InputError

TS_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")
ROLES = ("symbol", "timestamp", "open", "high", "low", "close", "volume")

Guard = Callable[[str], AbstractContextManager[None]]  # ``Source._errors``: driver errors -> ours


def split_identifier(name: str) -> sql.Identifier:
    parts = [p.strip().strip('"') for p in str(name).split(".")]
    if not all(parts) or len(parts) > 3:
        raise InputError(f"invalid table name {name!r}", hint="use table or schema.table")
    return sql.Identifier(*parts)


@dataclass(frozen=True)
class SourceSpec:
    table: str = "market_data"
    columns: Mapping[str, str] = field(default_factory=lambda: {r: r for r in ROLES})
    timeframe_column: str | None = None
    timeframe: Any = None
    timezone: str | None = None
    label: str = "open"

    def name(self, role: str) -> str:
        return str(self.columns.get(role) or role)

    def col(self, role: str) -> sql.Identifier:
        return sql.Identifier(self.name(role))

    def where(self, params: dict[str, Any]) -> sql.Composable:
        """The row filter (timeframe), its values added to ``params``."""
        clauses: list[sql.Composable] = []
        if self.timeframe_column:
            clauses.append(sql.SQL("{} = %(tf)s").format(sql.Identifier(self.timeframe_column)))
            params["tf"] = self.timeframe
        return sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("TRUE")

    def valid_predicate(
        self, *, dst_check: bool, types: Mapping[str, str] | None = None, server_version: int = 0
    ) -> sql.Composable:
        """Rows the catalog can take (the server-side twin of ``rows.convert``).

        ``types`` (column -> data type, from ``inspect_columns``) lets the finiteness test compare
        in the column's own type: a ``numeric -> float8`` cast goes through text on the server and
        cost more than the rest of the statistics pass together. Only ``high`` and ``volume`` need
        it: PostgreSQL sorts NaN above +Infinity (numeric and float alike), so a finite high that
        is >= open, close and low makes them finite too, and ``low > 0`` rules out -Infinity.
        """
        ts, o, h, lo, c, v = (self.col(r) for r in ROLES[1:])
        parts: list[sql.Composable] = [
            sql.SQL("{} IS NOT NULL").format(x) for x in (ts, o, h, lo, c, v)
        ]
        for role in ("high", "volume"):
            finite = _finite(self.col(role), (types or {}).get(self.name(role)), server_version)
            if finite is not None:
                parts.append(finite)
        parts.append(
            sql.SQL("{lo} > 0 AND {h} >= {lo} AND {h} >= {o} AND {h} >= {c}").format(
                lo=lo, h=h, o=o, c=c
            )
        )
        parts.append(
            sql.SQL("{lo} <= {o} AND {lo} <= {c} AND {v} >= 0").format(lo=lo, o=o, c=c, v=v)
        )
        if dst_check:  # naive local times that do not exist or occur twice in the zone
            u = sql.SQL("({} AT TIME ZONE %(tz)s)").format(ts)
            parts.append(
                sql.SQL(
                    "({u} AT TIME ZONE %(tz)s) = {ts} AND (({u} + interval '1 hour') AT TIME ZONE "
                    "%(tz)s) <> {ts} AND (({u} - interval '1 hour') AT TIME ZONE %(tz)s) <> {ts}"
                ).format(u=u, ts=ts)
            )
        return sql.SQL(" AND ").join(parts)


INTEGERS = ("smallint", "integer", "bigint")
FLOATS = ("double precision", "real")


def _finite(
    col: sql.Identifier, data_type: str | None, server_version: int
) -> sql.Composable | None:
    """``col`` is neither NaN nor ±Infinity (-Infinity fails the sign checks anyway); ``None``
    when the type cannot hold them. NaN sorts above Infinity in PostgreSQL's numeric and float
    orderings, so ``< 'Infinity'`` rules out both."""
    if data_type in INTEGERS:
        return None
    if data_type in FLOATS:
        return sql.SQL("{} < 'Infinity'::float8").format(col)
    if data_type == "numeric":
        if server_version and server_version < 140000:  # no numeric infinities before 14
            return sql.SQL("{} <> 'NaN'::numeric").format(col)
        return sql.SQL("{} < 'Infinity'::numeric").format(col)
    return sql.SQL("{}::float8 < 'Infinity'::float8").format(col)


def inspect_columns(
    conn: psycopg.Connection[Any], spec: SourceSpec, guard: Guard, where: str
) -> tuple[dict[str, str], str]:
    """(column name -> data type, timestamp column type) from ``information_schema.columns``.

    ``where`` names the database in messages (a redacted DSN).
    """
    parts = [p.strip().strip('"') for p in spec.table.split(".")]
    name, schema = parts[-1], (parts[-2] if len(parts) > 1 else None)
    query = (
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s"
        + (
            " AND table_schema = %s"
            if schema
            else " AND table_schema = ANY(current_schemas(false))"
        )
    )
    with guard("inspecting the table"):
        rows = conn.execute(query, [name, schema] if schema else [name]).fetchall()
    if not rows:
        raise InputError(
            f"table {spec.table!r} not found in {where}",
            hint="set source.table=schema.table (the legacy bars table)",
        )
    types = {str(r[0]): str(r[1]) for r in rows}
    wanted = {r: str(spec.columns.get(r) or r) for r in ROLES}
    if spec.timeframe_column:
        wanted["timeframe"] = str(spec.timeframe_column)
    missing = [f"{role}={col}" for role, col in wanted.items() if col not in types]
    if missing:
        raise InputError(
            f"table {spec.table} lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(sorted(types))}",
            hint="map them: source.columns.timestamp=ts (and so on)",
        )
    ts_type = types[wanted["timestamp"]]
    if ts_type not in TS_TYPES:
        raise InputError(
            f"column {wanted['timestamp']} has type {ts_type}, not a timestamp",
            hint="point source.columns.timestamp at a timestamp/timestamptz/date column",
        )
    if ts_type != "timestamp with time zone" and not spec.timezone:
        raise InputError(
            f"column {wanted['timestamp']} is {ts_type} (no time zone): the zone the "
            "legacy system wrote it in must be given",
            hint="set source.timezone=America/New_York (or UTC) — ARGS='source.timezone=…'",
        )
    return types, ts_type

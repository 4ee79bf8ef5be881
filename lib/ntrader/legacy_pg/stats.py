"""Per-symbol facts about the legacy table, measured on the server in one GROUP BY pass.

Counts (all, NULL timestamp, valid, distinct valid timestamps), the valid range and the decimals
(price precision of a new instrument). Symbols, time zones and filter values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from loguru import logger
from psycopg import sql

from ntrader.legacy_pg.schema import INTEGERS, Guard, SourceSpec, split_identifier


@dataclass(frozen=True)
class Stats:
    """Per-symbol facts measured on the server (one GROUP BY pass)."""

    symbol: str
    total: int
    null_ts: int
    valid: int
    distinct_valid: int
    first: Any  # python datetime/date of the first/last valid row, as the column holds it
    last: Any
    price_scale: int | None
    size_scale: int | None
    conflicting_ts: int = 0

    @property
    def expected(self) -> int:
        """Rows the catalog should hold: valid distinct timestamps minus conflicting duplicates."""
        return self.distinct_valid - self.conflicting_ts


def table_stats(
    conn: psycopg.Connection[Any],
    spec: SourceSpec,
    guard: Guard,
    symbols: Sequence[str] | None,
    *,
    dst_check: bool,
    types: Mapping[str, str] | None = None,
) -> dict[str, Stats]:
    """One pass over the table: per symbol counts, valid range and decimals.

    Grouped by (symbol, row valid) rather than filtering each aggregate on a once-computed
    validity flag (that needed an ``OFFSET 0`` fence, which also kept PostgreSQL from running the
    scan in parallel workers): the flag is a grouping key, evaluated once per row, and the
    aggregate runs as a parallel partial aggregate. 5M rows: 4.4 s -> 1.1 s on 2 cores.
    """
    s = spec
    sym, ts = s.col("symbol"), s.col("timestamp")
    params: dict[str, Any] = {"tz": s.timezone or "UTC"}
    where = s.where(params)
    if symbols:
        where = sql.SQL("{} AND {} = ANY(%(symbols)s)").format(where, sym)
        params["symbols"] = list(symbols)
    version = int(conn.info.server_version)
    valid = s.valid_predicate(dst_check=dst_check, types=types, server_version=version)
    scale = sql.SQL("min_scale({}::numeric)" if version >= 130000 else "scale({}::numeric)")
    price_scale = sql.SQL("greatest({})").format(
        sql.SQL(", ").join(scale.format(s.col(r)) for r in ("open", "high", "low", "close"))
    )
    unique = unique_key(conn, spec, guard)
    query = sql.SQL(
        "SELECT s, ok, count(*), count(*) FILTER (WHERE t IS NULL), {n_distinct}, min(t), max(t), "
        "max(ps), max(vs) FROM (SELECT {sym} AS s, {ts} AS t, ({valid}) AS ok, {ps} AS ps, "
        "{vs} AS vs FROM {table} WHERE {where}) x GROUP BY s, ok"
    ).format(
        # a unique key makes the distinct count a plain count (no per-symbol sort)
        n_distinct=sql.SQL("count(*)" if unique else "count(DISTINCT t)"),
        sym=sym,
        ts=ts,
        valid=valid,
        ps=price_scale,
        vs=sql.SQL("0")  # an integer column has no decimals: skip the per-row numeric cast
        if (types or {}).get(s.name("volume")) in INTEGERS
        else scale.format(s.col("volume")),
        table=split_identifier(s.table),
        where=where,
    )
    with guard("reading table statistics"):
        rows = conn.execute(query, params).fetchall()
    groups: dict[Any, dict[bool, tuple[Any, ...]]] = {}
    for r in rows:
        groups.setdefault(r[0], {})[bool(r[1])] = r
    out: dict[str, Stats] = {}
    for symbol in sorted(groups, key=lambda x: (x is None, x)):
        g = groups[symbol]
        total = sum(int(r[2]) for r in g.values())
        if symbol is None:
            logger.warning(f"{total:,} rows with a NULL symbol are skipped (no key to store)")
            continue
        null_ts = sum(int(r[3]) for r in g.values())
        ok = g.get(True)
        valid_n, distinct = (int(ok[2]), int(ok[4])) if ok else (0, 0)
        first, last, ps, vs = ok[5:9] if ok else (None, None, None, None)
        st = Stats(str(symbol), total, null_ts, valid_n, distinct, first, last, ps, vs)
        if st.valid != st.distinct_valid:
            n = _conflicting(conn, spec, guard, st.symbol, valid)
            st = Stats(**{**st.__dict__, "conflicting_ts": n})
        out[st.symbol] = st
    return out


def unique_key(conn: psycopg.Connection[Any], spec: SourceSpec, guard: Guard) -> bool:
    """Whether a unique index (or primary key) guarantees one row per (symbol, timestamp).

    Any valid, non-partial, plain-column unique index whose columns are among symbol, timestamp
    (and the timeframe column when it is filtered on) does: duplicates then cannot exist, so the
    statistics pass needs no ``count(DISTINCT)`` and no conflicting-duplicate count.
    """
    allowed = {str(spec.columns.get(r) or r) for r in ("symbol", "timestamp")}
    if spec.timeframe_column:
        allowed.add(str(spec.timeframe_column))
    query = (
        "SELECT array(SELECT a.attname::text FROM unnest(i.indkey) k JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = k) FROM pg_index i "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indisvalid "
        "AND i.indpred IS NULL AND i.indexprs IS NULL"
    )
    with guard("inspecting the table's keys"):
        name = split_identifier(spec.table).as_string(conn)
        rows = conn.execute(query, [name]).fetchall()
    return any(r[0] and set(r[0]) <= allowed for r in rows)


def _conflicting(
    conn: psycopg.Connection[Any],
    spec: SourceSpec,
    guard: Guard,
    symbol: str,
    valid: sql.Composable,
) -> int:
    """Timestamps whose valid duplicate rows differ (all copies are rejected)."""
    s = spec
    params: dict[str, Any] = {"tz": s.timezone or "UTC", "symbol": symbol}
    vals = sql.SQL(", ").join(s.col(r) for r in ("open", "high", "low", "close", "volume"))
    query = sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {where} AND {sym} = %(symbol)s "
        "AND {valid} GROUP BY {ts} HAVING count(DISTINCT ({vals})) > 1) d"
    ).format(
        table=split_identifier(s.table),
        where=s.where(params),
        sym=s.col("symbol"),
        valid=valid,
        ts=s.col("timestamp"),
        vals=vals,
    )
    with guard("counting duplicate timestamps"):
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0

"""Per-symbol facts about the legacy table, measured on the server in one GROUP BY pass.

Counts (all, NULL timestamp, valid, distinct valid timestamps), the valid range and the decimals
(price precision of a new instrument). Symbols, time zones and filter values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from loguru import logger
from psycopg import sql

from ntrader.pg_schema import Guard, SourceSpec, split_identifier


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
) -> dict[str, Stats]:
    """One pass over the table: per symbol counts, valid range and decimals."""
    s = spec
    sym, ts = s.col("symbol"), s.col("timestamp")
    params: dict[str, Any] = {"tz": s.timezone or "UTC"}
    where = s.where(params)
    if symbols:
        where = sql.SQL("{} AND {} = ANY(%(symbols)s)").format(where, sym)
        params["symbols"] = list(symbols)
    valid = s.valid_predicate(dst_check=dst_check)
    min_scale = int(conn.info.server_version) >= 130000
    scale = sql.SQL("min_scale({}::numeric)") if min_scale else sql.SQL("scale({}::numeric)")
    price_scale = sql.SQL("greatest({})").format(
        sql.SQL(", ").join(scale.format(s.col(r)) for r in ("open", "high", "low", "close"))
    )
    unique = unique_key(conn, spec, guard)
    query = sql.SQL(
        "SELECT s, count(*), count(*) FILTER (WHERE t IS NULL), count(*) FILTER (WHERE ok), "
        "{n_distinct} FILTER (WHERE ok), min(t) FILTER (WHERE ok), "
        "max(t) FILTER (WHERE ok), max(ps) FILTER (WHERE ok), max(vs) FILTER (WHERE ok) "
        "FROM (SELECT {sym} AS s, {ts} AS t, ({valid}) AS ok, {ps} AS ps, {vs} AS vs "
        "FROM {table} WHERE {where} OFFSET 0) x GROUP BY s ORDER BY s"  # OFFSET 0: `ok` once
    ).format(
        # a unique key makes the distinct count a plain count (no per-symbol sort)
        n_distinct=sql.SQL("count(*)" if unique else "count(DISTINCT t)"),
        sym=sym,
        ts=ts,
        valid=valid,
        ps=price_scale,
        vs=scale.format(s.col("volume")),
        table=split_identifier(s.table),
        where=where,
    )
    with guard("reading table statistics"):
        rows = conn.execute(query, params).fetchall()
    out: dict[str, Stats] = {}
    for r in rows:
        if r[0] is None:
            logger.warning(f"{r[1]:,} rows with a NULL symbol are skipped (no key to store)")
            continue
        total, null_ts, valid_n, distinct = (int(x) for x in r[1:5])
        st = Stats(str(r[0]), total, null_ts, valid_n, distinct, r[5], r[6], r[7], r[8])
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

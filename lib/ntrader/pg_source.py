"""The legacy PostgreSQL bars table, read safely: connection, errors, paged bulk reads.

- DSN handling and redaction live in ``pg_dsn`` (the password never leaves it), the table's shape
  and the shared SQL pieces in ``pg_schema``, the per-symbol statistics pass in ``pg_stats``; the
  names are re-exported here.
- Identifiers go through ``psycopg.sql.Identifier``; symbols, time zones, filter values and keyset
  positions are always bound parameters.
- psycopg 3 holds the control session (inspection, statistics, spot checks); the bulk read is
  ADBC (≈1M rows/s measured) in keyset pages (``WHERE symbol = $1 AND ts >= $2 ORDER BY ts
  LIMIT n``), so memory is bounded by one page whatever the table size (ADBC does not stream
  the results of parameterised queries: a page is the unit). Sessions use ``TimeZone = 'UTC'``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pyarrow as pa
from loguru import logger
from psycopg import sql

from ntrader.errors import ConnectionFailure, InputError, SystemFailure
from ntrader.pg_dsn import Scrubber, normalize_dsn, parse_dsn, redact_dsn, target_of
from ntrader.pg_schema import ROLES, TS_TYPES, SourceSpec, inspect_columns, split_identifier
from ntrader.pg_stats import Stats, table_stats

__all__ = [
    "FAULT_ENV",
    "ROLES",
    "TS_TYPES",
    "Scrubber",
    "Source",
    "SourceSpec",
    "Stats",
    "normalize_dsn",
    "redact_dsn",
    "split_identifier",
    "target_of",
]

FAULT_ENV = "NTRADER_MIGRATE_FAULT"  # test hook: "terminate_after_pages=N"


class Source:
    """Two sessions on the legacy database: psycopg (control) and ADBC (bulk reads)."""

    def __init__(self, dsn: str, spec: SourceSpec, page_rows: int) -> None:
        self.dsn = normalize_dsn(dsn)
        self.spec = spec
        self.page_rows = int(page_rows)
        self.scrub = Scrubber(dsn)
        self.ts_type = ""
        self.types: dict[str, str] = {}
        self._adbc: Any = None
        self._adbc_pid: int | None = None
        self._pages_read = 0
        self._fault_after = _fault_pages()
        parse_dsn(dsn)
        try:
            self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=15)
            self.conn.execute("SET TimeZone = 'UTC'")
        except psycopg.OperationalError as exc:
            raise self._connection_failure(exc) from None

    # ------------------------------------------------------------------ errors
    def _connection_failure(self, exc: BaseException) -> ConnectionFailure:
        first = self.scrub(exc).strip().splitlines()
        return ConnectionFailure(
            f"PostgreSQL {target_of(self.dsn)}: {' / '.join(s.strip() for s in first[:3])}",
            hint="check that the server is up and reachable, the DSN (DATABASE_URL) user/password "
            "and database, then rerun: completed batches are kept, the rerun resumes",
        )

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        import adbc_driver_manager as adm

        try:
            yield
        except (psycopg.OperationalError, adm.OperationalError) as exc:
            raise self._connection_failure(exc) from None
        except psycopg.errors.UndefinedTable as exc:
            raise InputError(
                f"{what}: {self.scrub(exc).splitlines()[0]}",
                hint="set source.table=schema.table to the legacy bars table",
            ) from None
        except (psycopg.Error, adm.Error) as exc:
            raise SystemFailure(f"{what}: {self.scrub(exc).strip()}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._adbc is not None:
                self._adbc.close()
        with contextlib.suppress(Exception):
            self.conn.close()

    # ------------------------------------------------------------------ schema, statistics
    def inspect(self) -> dict[str, str]:
        """Column name -> data type of the table (``information_schema.columns``)."""
        self.types, self.ts_type = inspect_columns(
            self.conn, self.spec, self._errors, redact_dsn(self.dsn)
        )
        return self.types

    def valid_predicate(self, *, dst_check: bool) -> sql.Composable:
        """Rows the catalog can take (the server-side twin of ``migrate.accept``)."""
        version = int(self.conn.info.server_version)
        return self.spec.valid_predicate(
            dst_check=dst_check, types=self.types, server_version=version
        )

    def stats(self, symbols: Sequence[str] | None, *, dst_check: bool) -> dict[str, Stats]:
        """One pass over the table: per symbol counts, valid range and decimals."""
        return table_stats(
            self.conn, self.spec, self._errors, symbols, dst_check=dst_check, types=self.types
        )

    # ------------------------------------------------------------------ bulk read (ADBC)
    def _adbc_cursor(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc

        if self._adbc is None:
            with self._errors("connecting for the bulk read"):
                self._adbc = adbc.connect(self.dsn)
                cur = self._adbc.cursor()
                cur.execute("SET TimeZone = 'UTC'")
                cur.execute("SELECT pg_backend_pid()")
                self._adbc_pid = int(cur.fetchone()[0])
                cur.close()
        return self._adbc.cursor()

    def _page_sql(self, keyset: bool) -> str:
        s = self.spec
        params: dict[str, Any] = {}
        query = sql.SQL(
            "SELECT {ts} AS ts, {o}::float8 AS open, {h}::float8 AS high, {lo}::float8 AS low, "
            "{c}::float8 AS close, {v}::float8 AS volume FROM {table} "
            "WHERE {sym} = %(symbol)s AND {ts} IS NOT NULL AND {where}{keyset} "
            "ORDER BY {ts} LIMIT {n}"
        ).format(
            ts=s.col("timestamp"),
            o=s.col("open"),
            h=s.col("high"),
            lo=s.col("low"),
            c=s.col("close"),
            v=s.col("volume"),
            table=split_identifier(s.table),
            sym=s.col("symbol"),
            where=s.where(params),
            n=sql.Literal(self.page_rows),
            keyset=sql.SQL(" AND {} >= %(after)s").format(s.col("timestamp"))
            if keyset
            else sql.SQL(""),
        )
        text = query.as_string(self.conn)
        order = ["symbol", *(["tf"] if "tf" in params else []), *(["after"] if keyset else [])]
        for i, name in enumerate(order, 1):  # ADBC placeholders are $1, $2 …
            text = text.replace(f"%({name})s", f"${i}")
        return text

    def pages(self, symbol: str) -> Iterator[pa.Table]:
        """The symbol's rows ascending by timestamp, one page (<= page_rows) at a time.

        A full page's trailing rows sharing the last timestamp are held back and re-read as the
        start of the next page, so duplicates are never split across pages.
        """
        after: Any = None
        while True:
            self._maybe_fault()
            params: list[Any] = [symbol]
            if self.spec.timeframe_column:
                params.append(self.spec.timeframe)
            if after is not None:
                params.append(after)
            with self._errors(f"reading {symbol}"):
                cur = self._adbc_cursor()
                cur.execute(self._page_sql(after is not None), params)
                page = cur.fetch_arrow_table()
                cur.close()
            self._pages_read += 1
            n = page.num_rows
            if n < self.page_rows:
                if n:
                    yield page
                return
            ts = page.column("ts")
            last = ts[n - 1]
            keep = n
            while keep > 0 and ts[keep - 1] == last:
                keep -= 1
            if keep == 0:  # a whole page on one timestamp: take it, move past it
                logger.warning(f"{symbol}: more than {n:,} rows share timestamp {last.as_py()}")
                yield page
                after = _next_after(last.as_py(), self.ts_type)
                continue
            yield page.slice(0, keep)
            after = last.as_py()

    def fetch_ranges(self, symbol: str, ranges: Sequence[tuple[Any, Any]]) -> pa.Table:
        """Rows of ``symbol`` with ``lo <= ts < hi`` for any (lo, hi) — spot checks."""
        s = self.spec
        params: dict[str, Any] = {"symbol": symbol}
        conds = []
        for i, (lo, hi) in enumerate(ranges):
            params[f"lo{i}"], params[f"hi{i}"] = lo, hi
            conds.append(
                sql.SQL("({ts} >= {lo} AND {ts} < {hi})").format(
                    ts=s.col("timestamp"),
                    lo=sql.Placeholder(f"lo{i}"),
                    hi=sql.Placeholder(f"hi{i}"),
                )
            )
        query = sql.SQL(
            "SELECT {ts}, {o}::float8, {h}::float8, {lo}::float8, {c}::float8, {v}::float8 "
            "FROM {table} WHERE {sym} = %(symbol)s AND {where} AND ({conds}) ORDER BY {ts}"
        ).format(
            ts=s.col("timestamp"),
            o=s.col("open"),
            h=s.col("high"),
            lo=s.col("low"),
            c=s.col("close"),
            v=s.col("volume"),
            table=split_identifier(s.table),
            sym=s.col("symbol"),
            where=s.where(params),
            conds=sql.SQL(" OR ").join(conds) if conds else sql.SQL("FALSE"),
        )
        with self._errors(f"spot-checking {symbol}"):
            rows = self.conn.execute(query, params).fetchall()
        cols: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in range(6)]
        ts_type = {
            "timestamp with time zone": pa.timestamp("us", "UTC"),
            "timestamp without time zone": pa.timestamp("us"),
            "date": pa.date32(),
        }
        arrays = [pa.array(list(cols[0]), type=ts_type[self.ts_type])]
        arrays += [pa.array(list(c), type=pa.float64()) for c in cols[1:]]
        return pa.table(arrays, names=["ts", "open", "high", "low", "close", "volume"])

    # ------------------------------------------------------------------ fault hook (tests)
    def _maybe_fault(self) -> None:
        if self._fault_after is None or self._adbc_pid is None:
            return
        if self._pages_read >= self._fault_after:
            self._fault_after = None
            logger.debug(f"fault hook: terminating the bulk-read backend {self._adbc_pid}")
            self.conn.execute("SELECT pg_terminate_backend(%s)", [self._adbc_pid])


def _next_after(value: Any, ts_type: str) -> Any:
    import datetime as dt

    step = dt.timedelta(days=1) if ts_type == "date" else dt.timedelta(microseconds=1)
    return value + step


def _fault_pages() -> int | None:
    m = re.fullmatch(r"terminate_after_pages=(\d+)", os.environ.get(FAULT_ENV, ""))
    return int(m.group(1)) if m else None

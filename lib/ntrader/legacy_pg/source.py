"""The legacy PostgreSQL bars table, read safely: connection, errors, streamed bulk reads.

- DSN handling and redaction live in ``dsn`` (the password never leaves it), the table's shape
  and the shared SQL pieces in ``schema``, the per-symbol statistics pass in ``stats``; the
  names are re-exported here.
- Identifiers go through ``psycopg.sql.Identifier``; symbols, time zones and filter values are
  bound parameters — on the bulk read bound client-side by psycopg (``ClientCursor.mogrify``),
  since ADBC streams only parameterless statements.
- psycopg 3 holds the control session (inspection, statistics, spot checks); the bulk read is
  ADBC: one binary-COPY stream per symbol (``WHERE symbol = … ORDER BY ts``), read ahead in a
  thread (``stream``), so memory is bounded by a few batches and one page whatever the table
  size. Sessions use ``TimeZone = 'UTC'``.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pyarrow as pa
from loguru import logger
from psycopg import sql

from ntrader.errors import ConnectionFailure, InputError, SystemFailure
from ntrader.legacy_pg.dsn import Scrubber, normalize_dsn, parse_dsn, redact_dsn, target_of
from ntrader.legacy_pg.schema import ROLES, TS_TYPES, SourceSpec, inspect_columns, split_identifier
from ntrader.legacy_pg.stats import Stats, table_stats
from ntrader.legacy_pg.stream import ReadAhead

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

FAULT_ENV = "NTRADER_MIGRATE_FAULT"  # test hook: "terminate_after_batches=N"


class Source:
    """Two sessions on the legacy database: psycopg (control) and ADBC (bulk reads)."""

    def __init__(self, dsn: str, spec: SourceSpec, page_rows: int) -> None:
        self.dsn = normalize_dsn(dsn)
        self.spec = spec
        self.page_rows = int(page_rows)
        self.scrub = Scrubber(dsn)
        self.ts_type = ""
        self.types: dict[str, str] = {}
        self.stats_seconds = 0.0  # wall time of the statistics pass on the server
        self._stats_job: tuple[Any, threading.Thread, dict[str, Any]] | None = None
        self._adbc: Any = None
        self._adbc_pid: int | None = None
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
        except OSError as exc:  # a COPY stream broken mid-way surfaces through Arrow as OSError
            if "[libpq]" in str(exc):
                raise self._connection_failure(exc) from None
            raise

    def close(self) -> None:
        if self._stats_job is not None:  # an unused prefetch: stop the query, wait for it
            with contextlib.suppress(Exception):
                self.conn.cancel_safe()
            self._stats_job[1].join()
            self._stats_job = None
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
        """One pass over the table: per symbol counts, valid range and decimals (the result of
        ``prefetch_stats`` when it was started with the same arguments)."""
        job, self._stats_job = self._stats_job, None
        if job is not None:
            key, thread, box = job
            thread.join()
            if key == (tuple(symbols or ()), dst_check):
                if "error" in box:
                    raise box["error"]
                return dict(box["result"])
        t0 = time.perf_counter()
        out = table_stats(
            self.conn, self.spec, self._errors, symbols, dst_check=dst_check, types=self.types
        )
        self.stats_seconds = time.perf_counter() - t0
        return out

    def prefetch_stats(self, symbols: Sequence[str] | None, *, dst_check: bool) -> None:
        """Start the statistics pass in a thread: the server works while the caller goes on
        (the migrate script imports Nautilus meanwhile). Needs ``inspect`` first."""
        box: dict[str, Any] = {}

        def run() -> None:
            t0 = time.perf_counter()
            try:
                box["result"] = table_stats(
                    self.conn, self.spec, self._errors, symbols, dst_check=dst_check,
                    types=self.types,
                )  # fmt: skip
            except BaseException as exc:  # re-raised by ``stats`` in the caller's thread
                box["error"] = exc
            self.stats_seconds = time.perf_counter() - t0

        thread = threading.Thread(target=run, name="pg-stats", daemon=True)
        thread.start()
        self._stats_job = ((tuple(symbols or ()), dst_check), thread, box)

    # ------------------------------------------------------------------ bulk read (ADBC)
    def _adbc_connection(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc

        if self._adbc is None:
            with self._errors("connecting for the bulk read"):
                self._adbc = adbc.connect(self.dsn)
                cur = self._adbc.cursor()
                cur.execute("SET TimeZone = 'UTC'")
                cur.execute("SELECT pg_backend_pid()")
                self._adbc_pid = int(cur.fetchone()[0])
                cur.close()
        return self._adbc

    def _stream_sql(self, symbol: str) -> str:
        """One symbol's rows, ascending by timestamp, as statement text with its values bound
        client-side by psycopg (``ClientCursor.mogrify``: quoted for this server), because ADBC
        streams only parameterless statements (``stream``)."""
        s = self.spec
        params: dict[str, Any] = {"symbol": symbol}
        query = sql.SQL(
            "SELECT {cols} FROM {table} "
            "WHERE {sym} = %(symbol)s AND {ts} IS NOT NULL AND {where} ORDER BY {ts}"
        ).format(
            cols=self._ohlcv_columns(),
            ts=s.col("timestamp"),
            table=split_identifier(s.table),
            sym=s.col("symbol"),
            where=s.where(params),
        )
        return psycopg.ClientCursor(self.conn).mogrify(query, params)

    def read_ahead(self, symbols: Sequence[str]) -> ReadAhead:
        """A context manager streaming ``symbols`` in that order; ``.pages(symbol)`` per symbol
        (ascending by timestamp, pages of about ``page_rows`` rows, duplicates never split)."""
        if symbols:
            self._adbc_connection()
        return _GuardedReadAhead(self, symbols)

    def pages(self, symbol: str) -> Iterator[pa.Table]:
        """One symbol's pages (see ``read_ahead``)."""
        with self.read_ahead([symbol]) as reader:
            yield from reader.pages(symbol)

    def _ohlcv_columns(self) -> sql.Composed:
        """``ts, open, high, low, close, volume`` of the legacy table, prices as float8."""
        s = self.spec
        return sql.SQL(
            "{ts} AS ts, {o}::float8 AS open, {h}::float8 AS high, {lo}::float8 AS low, "
            "{c}::float8 AS close, {v}::float8 AS volume"
        ).format(
            ts=s.col("timestamp"),
            o=s.col("open"),
            h=s.col("high"),
            lo=s.col("low"),
            c=s.col("close"),
            v=s.col("volume"),
        )

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
            "SELECT {cols} FROM {table} "
            "WHERE {sym} = %(symbol)s AND {where} AND ({conds}) ORDER BY {ts}"
        ).format(
            cols=self._ohlcv_columns(),
            ts=s.col("timestamp"),
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
    def _maybe_fault(self, batches: int) -> None:
        """Test hook (reader thread): terminate the bulk-read backend after N batches, while the
        server is still streaming (the table must be larger than the socket buffers)."""
        if self._fault_after is None or self._adbc_pid is None or batches < self._fault_after:
            return
        self._fault_after = None
        logger.debug(f"fault hook: terminating the bulk-read backend {self._adbc_pid}")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", [self._adbc_pid])


class _GuardedReadAhead(ReadAhead):
    """``ReadAhead`` on the source's ADBC connection, its errors mapped like the source's."""

    def __init__(self, source: Source, symbols: Sequence[str]) -> None:
        super().__init__(
            lambda: source._adbc.cursor(),
            source._stream_sql,
            symbols,
            source.page_rows,
            on_batch=source._maybe_fault,
        )
        self.source = source

    def pages(self, symbol: str) -> Iterator[pa.Table]:
        with self.source._errors(f"reading {symbol}"):
            yield from super().pages(symbol)


def _fault_pages() -> int | None:
    m = re.fullmatch(r"terminate_after_batches=(\d+)", os.environ.get(FAULT_ENV, ""))
    return int(m.group(1)) if m else None

"""The legacy PostgreSQL bars table, read safely: DSN redaction, schema inspection, paged reads.

- The DSN password never leaves this module: ``redact_dsn`` shows ``postgresql://user:***@host:port/db``
  and ``Scrubber`` removes the password from any text (driver errors included).
- Identifiers (table, columns) go through ``psycopg.sql.Identifier`` (``schema.table`` is split on
  '.'); symbols, time zones, filter values and keyset positions are always bound parameters.
- psycopg 3 holds the control session (inspection, statistics, spot checks); the bulk read is
  ADBC (≈1M rows/s measured) in keyset pages (``WHERE symbol = $1 AND ts >= $2 ORDER BY ts
  LIMIT n``), so memory is bounded by one page whatever the table size (ADBC does not stream
  the results of parameterised queries: a page is the unit). Sessions use ``TimeZone = 'UTC'``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
import pyarrow as pa
from loguru import logger
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ntrader.errors import ConnectionFailure, InputError, SystemFailure

TS_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")
ROLES = ("symbol", "timestamp", "open", "high", "low", "close", "volume")
FAULT_ENV = "NTRADER_MIGRATE_FAULT"  # test hook: "terminate_after_pages=N"


def _parse_dsn(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(normalize_dsn(dsn))
    except psycopg.ProgrammingError as exc:
        raise InputError(
            "the DSN is not a valid PostgreSQL connection string",
            hint="use DATABASE_URL=postgresql://user:password@host:5432/database",
        ) from exc


def normalize_dsn(dsn: str) -> str:
    """SQLAlchemy-style ``postgresql+psycopg://`` -> ``postgresql://`` (libpq's form)."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", dsn.strip())


def redact_dsn(dsn: str | None) -> str:
    """``postgresql://user:***@host:port/db`` — never the password."""
    if not dsn:
        return "(no DSN)"
    try:
        d = conninfo_to_dict(normalize_dsn(dsn))
    except Exception:
        return "postgresql://(unparseable DSN, hidden)"
    user = d.get("user") or ""
    auth = f"{user}:***@" if d.get("password") else (f"{user}@" if user else "")
    host = str(d.get("host") or "")
    port = f":{d['port']}" if d.get("port") else ""
    db = d.get("dbname") or ""
    if host.startswith("/") or "," in host:
        return f"postgresql://{auth}/{db}?host={host}{port and '&port=' + port[1:]}"
    return f"postgresql://{auth}{host}{port}/{db}"


def target_of(dsn: str) -> str:
    """host:port/database for error messages (no user, no password)."""
    d = _parse_dsn(dsn)
    host = d.get("host") or os.environ.get("PGHOST") or "localhost (default socket)"
    return f"host {host}, port {d.get('port') or 5432}, database {d.get('dbname') or '(default)'}"


class Scrubber:
    """Removes the DSN and its password (plain and URL-quoted) from any text."""

    def __init__(self, dsn: str | None) -> None:
        self.secrets: list[str] = []
        if dsn:
            self.secrets.append(dsn.strip())
            with contextlib.suppress(Exception):
                pw = conninfo_to_dict(normalize_dsn(dsn)).get("password")
                if pw:
                    self.secrets += sorted({str(pw), quote(str(pw), safe="")}, key=len)[::-1]
        self.redacted = redact_dsn(dsn)

    def __call__(self, text: object) -> str:
        out = str(text)
        for s in self.secrets:
            out = out.replace(s, self.redacted if s == self.secrets[0] else "***")
        return out


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

    def col(self, role: str) -> sql.Identifier:
        return sql.Identifier(str(self.columns.get(role) or role))


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


class Source:
    """Two sessions on the legacy database: psycopg (control) and ADBC (bulk reads)."""

    def __init__(self, dsn: str, spec: SourceSpec, page_rows: int) -> None:
        self.dsn = normalize_dsn(dsn)
        self.spec = spec
        self.page_rows = int(page_rows)
        self.scrub = Scrubber(dsn)
        self.ts_type = ""
        self._adbc: Any = None
        self._adbc_pid: int | None = None
        self._pages_read = 0
        self._fault_after = _fault_pages()
        _parse_dsn(dsn)
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

    # ------------------------------------------------------------------ schema
    def inspect(self) -> dict[str, str]:
        """Column name -> data type of the table (``information_schema.columns``)."""
        parts = [p.strip().strip('"') for p in self.spec.table.split(".")]
        name, schema = parts[-1], (parts[-2] if len(parts) > 1 else None)
        query = (
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s"
            + (
                " AND table_schema = %s"
                if schema
                else " AND table_schema = ANY(current_schemas(false))"
            )
        )
        with self._errors("inspecting the table"):
            rows = self.conn.execute(query, [name, schema] if schema else [name]).fetchall()
        if not rows:
            raise InputError(
                f"table {self.spec.table!r} not found in {redact_dsn(self.dsn)}",
                hint="set source.table=schema.table (the legacy bars table)",
            )
        types = {str(r[0]): str(r[1]) for r in rows}
        wanted = {r: str(self.spec.columns.get(r) or r) for r in ROLES}
        if self.spec.timeframe_column:
            wanted["timeframe"] = str(self.spec.timeframe_column)
        missing = [f"{role}={col}" for role, col in wanted.items() if col not in types]
        if missing:
            raise InputError(
                f"table {self.spec.table} lacks column(s) {', '.join(missing)}; it has "
                f"{', '.join(sorted(types))}",
                hint="map them: source.columns.timestamp=ts (and so on)",
            )
        self.ts_type = types[wanted["timestamp"]]
        if self.ts_type not in TS_TYPES:
            raise InputError(
                f"column {wanted['timestamp']} has type {self.ts_type}, not a timestamp",
                hint="point source.columns.timestamp at a timestamp/timestamptz/date column",
            )
        if self.ts_type != "timestamp with time zone" and not self.spec.timezone:
            raise InputError(
                f"column {wanted['timestamp']} is {self.ts_type} (no time zone): the zone the "
                "legacy system wrote it in must be given",
                hint="set source.timezone=America/New_York (or UTC) — ARGS='source.timezone=…'",
            )
        return types

    # ------------------------------------------------------------------ SQL pieces
    def _where(self, params: dict[str, Any]) -> sql.Composable:
        s = self.spec
        clauses: list[sql.Composable] = []
        if s.timeframe_column:
            clauses.append(sql.SQL("{} = %(tf)s").format(sql.Identifier(s.timeframe_column)))
            params["tf"] = s.timeframe
        return sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("TRUE")

    def valid_predicate(self, *, dst_check: bool) -> sql.Composable:
        """Rows the catalog can take (the server-side twin of ``migrate.accept``)."""
        ts, o, h, lo, c, v = (self.spec.col(r) for r in ROLES[1:])
        parts = [sql.SQL("{} IS NOT NULL").format(x) for x in (ts, o, h, lo, c, v)]
        parts += [sql.SQL("{}::float8 < 'Infinity'::float8").format(x) for x in (o, h, lo, c, v)]
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

    def stats(self, symbols: Sequence[str] | None, *, dst_check: bool) -> dict[str, Stats]:
        """One pass over the table: per symbol counts, valid range and decimals."""
        s = self.spec
        sym, ts = s.col("symbol"), s.col("timestamp")
        params: dict[str, Any] = {"tz": s.timezone or "UTC"}
        where = self._where(params)
        if symbols:
            where = sql.SQL("{} AND {} = ANY(%(symbols)s)").format(where, sym)
            params["symbols"] = list(symbols)
        valid = self.valid_predicate(dst_check=dst_check)
        scale = (
            sql.SQL("min_scale({}::numeric)")
            if self._min_scale()
            else sql.SQL("scale({}::numeric)")
        )
        price_scale = sql.SQL("greatest({})").format(
            sql.SQL(", ").join(scale.format(s.col(r)) for r in ("open", "high", "low", "close"))
        )
        query = sql.SQL(
            "SELECT s, count(*), count(*) FILTER (WHERE t IS NULL), count(*) FILTER (WHERE ok), "
            "count(DISTINCT t) FILTER (WHERE ok), min(t) FILTER (WHERE ok), "
            "max(t) FILTER (WHERE ok), max(ps) FILTER (WHERE ok), max(vs) FILTER (WHERE ok) "
            "FROM (SELECT {sym} AS s, {ts} AS t, ({valid}) AS ok, {ps} AS ps, {vs} AS vs "
            "FROM {table} WHERE {where} OFFSET 0) x GROUP BY s ORDER BY s"  # OFFSET 0: `ok` once
        ).format(
            sym=sym,
            ts=ts,
            valid=valid,
            ps=price_scale,
            vs=scale.format(s.col("volume")),
            table=split_identifier(s.table),
            where=where,
        )
        with self._errors("reading table statistics"):
            rows = self.conn.execute(query, params).fetchall()
        out: dict[str, Stats] = {}
        for r in rows:
            if r[0] is None:
                logger.warning(f"{r[1]:,} rows with a NULL symbol are skipped (no key to store)")
                continue
            total, null_ts, valid_n, distinct = (int(x) for x in r[1:5])
            st = Stats(str(r[0]), total, null_ts, valid_n, distinct, r[5], r[6], r[7], r[8])
            if st.valid != st.distinct_valid:
                st = Stats(**{**st.__dict__, "conflicting_ts": self._conflicting(st.symbol, valid)})
            out[st.symbol] = st
        return out

    def _min_scale(self) -> bool:
        return int(self.conn.info.server_version) >= 130000

    def _conflicting(self, symbol: str, valid: sql.Composable) -> int:
        """Timestamps whose valid duplicate rows differ (all copies are rejected)."""
        s = self.spec
        params: dict[str, Any] = {"tz": s.timezone or "UTC", "symbol": symbol}
        vals = sql.SQL(", ").join(s.col(r) for r in ("open", "high", "low", "close", "volume"))
        query = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {where} AND {sym} = %(symbol)s "
            "AND {valid} GROUP BY {ts} HAVING count(DISTINCT ({vals})) > 1) d"
        ).format(
            table=split_identifier(s.table),
            where=self._where(params),
            sym=s.col("symbol"),
            valid=valid,
            ts=s.col("timestamp"),
            vals=vals,
        )
        with self._errors("counting duplicate timestamps"):
            row = self.conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0

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
            where=self._where(params),
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
            where=self._where(params),
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

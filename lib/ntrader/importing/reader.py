"""Read OHLCV bars from real-world CSV exports into a validated :class:`BarFrame`.

The file is read once with ``pyarrow.csv`` (every used column as a string, so decimals can be
counted exactly and bad values reported per line), then parsed and validated with vectorized
pyarrow.compute / numpy operations. Every problem is reported with its FILE line number
(header = line 1). Formats accepted: see :func:`read_csv_bars`.

This module parses and orchestrates; the parts live in ``csvfile`` (the bytes, pieces, progress),
``columns`` (header, delimiter, column aliases), ``timestamps`` (timestamp formats) and
``validation`` (numbers, checks and the problem list).
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ntrader.catalog.barframe import BarFrame
from ntrader.errors import CsvValidationError, InputError
from ntrader.importing.columns import (
    ALIASES,
    PRICE_ROLES,
    column_label,
    column_probe,
    read_header,
    resolve_columns,
)
from ntrader.importing.csvfile import BLOCK_BYTES, ParseProgress, longest_line, pieces, read_bytes
from ntrader.importing.csvspec import CsvSpec as CsvSpec
from ntrader.importing.timestamps import EPOCH_MULT, parse_timestamps
from ntrader.importing.validation import (
    MAX_PRECISION,
    Problems,
    Spacing,
    check_adjusted,
    check_order,
    check_prices,
    measure_spacing,
    show,
)
from ntrader.sessions import local_of, localize

__all__ = ["ALIASES", "CsvResult", "CsvSpec", "read_csv_bars"]

DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class CsvResult:
    bars: BarFrame  # validated, strictly increasing ts_event (bar CLOSE, UTC ns int64)
    rows_read: int
    columns: dict[str, str]  # role -> header actually used ("(unnamed column N)" if blank)
    ignored_columns: list[str]
    # an Adj Close column: per bar (ts_event order) the adjusted close (NaN: empty cell), half
    # the rounding unit of it and of the close (ntrader.catalog.factors derives the factors)
    adjusted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


@dataclass
class _Raw:
    table: pa.Table
    lines: np.ndarray  # file line number of every table row
    bad_rows: list[tuple[int, str]]  # (line, message) for rows with a wrong field count


def _read_table(data: bytes, path: Path, names: list[str], delim: str, used: list[int]) -> _Raw:
    cols = [f"f{i}" for i in range(len(names))]
    invalid: list[tuple[int | None, int, int]] = []

    def read(piece: memoryview, first_line: int, threads: bool) -> pa.Table:
        """``piece`` starts at file line ``first_line`` (1: the header, skipped)."""

        def handler(row: Any) -> str:
            number = None if row.number is None else row.number + max(0, first_line - 1)
            invalid.append((number, row.expected_columns, row.actual_columns))
            return "skip"

        try:
            return pacsv.read_csv(
                pa.py_buffer(piece),
                read_options=pacsv.ReadOptions(
                    column_names=cols,
                    skip_rows=1 if first_line == 1 else 0,
                    use_threads=threads,
                    block_size=BLOCK_BYTES,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=delim, ignore_empty_lines=False, invalid_row_handler=handler
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={cols[i]: pa.string() for i in used},
                    include_columns=[cols[i] for i in used],
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowException, ValueError) as exc:
            text = str(exc)
            if "straddl" in text:  # a row longer than a read block
                line, size = longest_line(data)
                raise InputError(
                    f"{path}: line {line:,} is {size:,} bytes long (more than {BLOCK_BYTES:,}): "
                    "not a line of bars",
                    hint="a missing line break or an unclosed quote? fix that line and import "
                    "again",
                ) from None
            if "UTF8" in text or "utf8" in text.lower():
                raise InputError(
                    f"{path}: not valid UTF-8 text",
                    hint="re-save the file as 'CSV UTF-8'",
                ) from None
            raise InputError(
                f"{path}: cannot parse the CSV: {text.splitlines()[0][:200]}",
                hint="check the delimiter (csv.delimiter) and quoting of the file",
            ) from None

    tables = []
    with ParseProgress(len(data), path) as progress:
        for piece, first_line in pieces(data):
            before = len(invalid)
            part = read(piece, first_line, True)
            if any(number is None for number, _, _ in invalid[before:]):
                del invalid[before:]  # row numbers are only known single-threaded
                part = read(piece, first_line, False)
            tables.append(part)
            progress.update(len(piece))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    n = table.num_rows
    bad_rows = [
        (int(number or 0), f"expected {exp} fields, found {act}") for number, exp, act in invalid
    ]
    if bad_rows:
        bad = np.array(sorted(line for line, _ in bad_rows), dtype=np.int64)
        lines = np.setdiff1d(np.arange(2, n + len(bad_rows) + 2, dtype=np.int64), bad)[:n]
    else:
        lines = np.arange(2, n + 2, dtype=np.int64)
    return _Raw(table, lines, bad_rows)


# --------------------------------------------------------------------------------------------
# main entry


def _check_args(spec: CsvSpec, bar_interval_ns: int, calendar_days: int) -> None:
    if spec.label not in ("open", "close"):
        raise InputError(f"csv.label must be 'open' or 'close', got {spec.label!r}")
    if spec.epoch_unit is not None and spec.epoch_unit not in EPOCH_MULT:
        raise InputError(f"csv.epoch_unit must be one of s, ms, us, ns; got {spec.epoch_unit!r}")
    if spec.delimiter is not None and not (
        len(spec.delimiter) == 1 or spec.delimiter.lower() in ("tab", "\\t")
    ):
        raise InputError(f"csv.delimiter must be a single character, got {spec.delimiter!r}")
    for name in ("price_precision", "size_precision"):
        value = getattr(spec, name)
        if value is not None and not 0 <= value <= MAX_PRECISION:
            raise InputError(f"csv.{name} must be between 0 and {MAX_PRECISION}, got {value}")
    if bar_interval_ns <= 0 or calendar_days < 0:
        raise InputError(
            f"bar interval must be positive (got {bar_interval_ns} ns, {calendar_days} days)"
        )
    try:
        zoneinfo.ZoneInfo(spec.tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {spec.tz!r}", hint="use an IANA zone name, e.g. America/New_York"
        ) from None


def read_csv_bars(
    path: str | os.PathLike[str],
    *,
    bar_interval_ns: int,
    calendar_days: int = 0,
    spec: CsvSpec | None = None,
    on_spacing: Callable[[Spacing], None] | None = None,
) -> CsvResult:
    """Read, parse and validate one CSV file of OHLCV bars.

    ``ts_event`` of the result is the bar close: ``label="open"`` adds ``bar_interval_ns`` to the
    timestamp (for DAY bars, ``calendar_days > 0``, it is local midnight of the timestamp's local
    date + ``calendar_days``); ``label="close"`` keeps the timestamp. Raises ``InputError`` for
    file-level problems and ``CsvValidationError`` listing (line, message) problems otherwise.
    ``on_spacing`` (``import_csv`` passes one when ``spec.check_spacing``) is called with the
    rows' :class:`~ntrader.importing.validation.Spacing` before the problems are raised, so its
    error (a wrong bar spec explains duplicate timestamps) comes first.
    """
    spec = spec or CsvSpec()
    _check_args(spec, bar_interval_ns, calendar_days)
    path = Path(path)
    data = read_bytes(path)
    names, delim = read_header(data, path, spec.delimiter)
    probe = column_probe(data, delim, spec.timestamp_format, spec.epoch_unit)
    roles, ignored = resolve_columns(names, spec.columns, path, delim, probe)
    used = sorted(set(roles.values()))
    raw = _read_table(data, path, names, delim, used)
    table = raw.table

    def col(role: str) -> pa.ChunkedArray:
        return table.column(f"f{roles[role]}")

    # blank rows: every used cell empty; trailing ones are dropped silently
    empty_cells = {
        role: np.asarray(pc.binary_length(col(role)).to_numpy(), dtype=np.int64) == 0
        for role in roles
    }
    blank = np.logical_and.reduce(list(empty_cells.values()))
    n = table.num_rows
    if n and blank[-1]:
        nonblank = np.flatnonzero(~blank)
        n = int(nonblank[-1]) + 1 if nonblank.size else 0
        table = table.slice(0, n)
        blank = blank[:n]
        empty_cells = {k: v[:n] for k, v in empty_cells.items()}
    lines = raw.lines[:n]
    rows_read = n + len(raw.bad_rows)
    if rows_read == 0:
        raise InputError(
            f"{path}: no data rows (only a header line)",
            hint="export the bars again; the file must have at least one data row",
        )

    problems = Problems(spec.max_errors)
    for line, message in raw.bad_rows:
        problems.add(line, message)
    problems.add_mask(blank, lines, lambda i: "blank line")
    headers = {role: column_label(names, i) for role, i in roles.items()}

    # numbers
    ohlcv = check_prices(
        {role: col(role) for role in (*PRICE_ROLES, "volume")},
        headers,
        blank,
        lines,
        problems,
        price_precision=spec.price_precision,
        size_precision=spec.size_precision,
    )

    adjusted = None
    if "adj_close" in roles:
        adjusted = check_adjusted(
            col("adj_close"), col("close"), headers["adj_close"], blank, lines, problems
        )

    # timestamps
    if "timestamp" in roles:
        ts_strings = col("timestamp")
        ts_missing = empty_cells["timestamp"]
        ts_head = headers["timestamp"]
    else:
        ts_strings = pc.binary_join_element_wise(col("date"), col("time"), " ")
        ts_missing = empty_cells["date"] | empty_cells["time"]
        ts_head = f"{headers['date']} + {headers['time']}"
    parsed = parse_timestamps(ts_strings, spec.timestamp_format, spec.epoch_unit)
    ts_ok = parsed.ok & ~ts_missing
    problems.add_mask(ts_missing & ~blank, lines, lambda i: f"{ts_head}: missing value")
    first_ok = np.flatnonzero(ts_ok)
    example = (
        f"; expected {parsed.described} like line {lines[first_ok[0]]}: "
        f"{show(ts_strings[int(first_ok[0])].as_py())}"
        if first_ok.size
        else "; set csv.timestamp_format (strptime) or csv.epoch_unit"
    )
    problems.add_mask(
        ~parsed.ok & ~ts_missing,
        lines,
        lambda i: f"{ts_head}: cannot parse timestamp {show(ts_strings[i].as_py())}{example}",
    )

    tz = spec.tz
    raw_ns = np.where(ts_ok, parsed.ns, 0)
    daily_open = spec.label == "open" and calendar_days > 0
    if parsed.aware:
        utc = raw_ns
    elif daily_open:
        utc = raw_ns  # unused: only the local date matters
    else:
        try:
            utc = localize(raw_ns, tz)
        except pa.ArrowInvalid:
            early = localize(raw_ns, tz, "earliest", "earliest")
            late = localize(raw_ns, tz, "latest", "latest")
            gap = late - early
            nonexistent = ts_ok & (gap > 0) & (gap <= 1_000)
            ambiguous = ts_ok & (gap > 1_000)
            problems.add_mask(
                nonexistent,
                lines,
                lambda i: (
                    f"{ts_head}: nonexistent local time {show(ts_strings[i].as_py())} in {tz} "
                    "(skipped by the DST change)"
                ),
            )
            problems.add_mask(
                ambiguous,
                lines,
                lambda i: (
                    f"{ts_head}: ambiguous local time {show(ts_strings[i].as_py())} in {tz} "
                    "(occurs twice at the DST change); export with UTC offsets or in UTC"
                ),
            )
            ts_ok &= ~(nonexistent | ambiguous)
            utc = early

    if daily_open:
        local = raw_ns if not parsed.aware else local_of(np.where(ts_ok, utc, 0), tz)
        midnight = np.floor_divide(local, DAY_NS) * DAY_NS + calendar_days * DAY_NS
        ts_event = localize(midnight, tz, "earliest", "latest")
    elif spec.label == "open":
        ts_event = utc + bar_interval_ns
    else:
        ts_event = utc

    # order: ascending, or newest-first throughout (the majority direction decides)
    descending = check_order(ts_event, ts_ok, ts_strings, lines, problems)

    if on_spacing is not None:  # on the local wall clock: daily rows are whole days apart
        wall = raw_ns if not parsed.aware else local_of(np.where(ts_ok, utc, 0), tz)
        on_spacing(measure_spacing(wall[ts_ok], ts_event[ts_ok], bar_interval_ns, calendar_days))

    if problems.total:
        listed = problems.listed()
        raise CsvValidationError(
            f"{path}: {problems.total} problem(s) in {rows_read} data row(s)",
            problems=listed,
            total=problems.total,
            hint=(
                "fix the listed lines (line 1 is the header) and import again; "
                "column mapping: csv.columns.<role>=<header>, formats: csv.timestamp_format, "
                "csv.epoch_unit, csv.tz"
            ),
        )

    order = np.arange(n)[::-1] if descending else np.arange(n)
    bars = BarFrame(
        np.ascontiguousarray(ts_event[order], dtype=np.int64),
        np.ascontiguousarray(ohlcv.open[order]),
        np.ascontiguousarray(ohlcv.high[order]),
        np.ascontiguousarray(ohlcv.low[order]),
        np.ascontiguousarray(ohlcv.close[order]),
        np.ascontiguousarray(ohlcv.volume[order]),
        ohlcv.price_precision,
        ohlcv.size_precision,
    )
    return CsvResult(
        bars=bars,
        rows_read=rows_read,
        columns=headers,
        ignored_columns=ignored,
        adjusted=None
        if adjusted is None
        else tuple(np.ascontiguousarray(a[order]) for a in adjusted),  # type: ignore[arg-type]
    )

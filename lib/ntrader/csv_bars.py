"""Read OHLCV bars from real-world CSV exports into a validated :class:`BarFrame`.

The file is read once with ``pyarrow.csv`` (every used column as a string, so decimals can be
counted exactly and bad values reported per line), then parsed and validated with vectorized
pyarrow.compute / numpy operations. Every problem is reported with its FILE line number
(header = line 1). Formats accepted: see :func:`read_csv_bars`.
"""

from __future__ import annotations

import csv
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ntrader.barframe import BarFrame
from ntrader.errors import CsvValidationError, InputError

__all__ = ["ALIASES", "CsvResult", "CsvSpec", "read_csv_bars"]

DAY_NS = 86_400 * 1_000_000_000
MAX_PRECISION = 9
PRICE_ROLES = ("open", "high", "low", "close")
ROLES = ("timestamp", "date", "time", "open", "high", "low", "close", "volume")
DELIMITERS = (",", ";", "\t", "|")
EPOCH_MULT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}

# Accepted header names per role, after normalization (lower case, trimmed, "_" -> " ",
# whitespace collapsed, "<...>" brackets removed). Earlier names win when several are present.
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "datetime",
        "date time",
        "date/time",
        "time stamp",
        "ts",
        "dt",
        "gmt time",
        "local time",
        "utc time",
        "open time",
    ),
    "date": ("date", "day", "trade date"),
    "time": ("time",),
    "open": ("open", "o", "open price"),
    "high": ("high", "h", "high price"),
    "low": ("low", "l", "low price"),
    "close": ("close", "c", "last", "close/last", "close price", "last price"),
    "volume": ("volume", "vol", "v", "tickvol", "tick volume"),
}

_ISO_NAIVE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
_ISO_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)"
_ISO_RE = re.compile(rf"({_ISO_NAIVE})\s*({_ISO_OFFSET})?")
_NUMBER_RE = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?\d+\.\d*")

_DATE_FORMATS = (
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%d.%m.%Y",
    "%Y%m%d",
    "%m/%d/%y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
)
_TIME_FORMATS = (
    "",
    " %H:%M",
    " %H:%M:%S",
    " %H:%M:%S.%f",
    "T%H:%M:%S",
    " %H%M%S",
    " %H%M",
    " %I:%M %p",
    " %I:%M:%S %p",
)
_CANDIDATE_FORMATS = tuple(d + t for d in _DATE_FORMATS for t in _TIME_FORMATS)

_MAPPING_HINT = (
    "map a column explicitly with config csv.columns.<role>=<header> "
    "(roles: timestamp, date, time, open, high, low, close, volume), "
    'e.g. csv.columns.close="Adj Close"'
)


@dataclass(frozen=True)
class CsvSpec:
    tz: str = "America/New_York"  # zone for naive timestamps (the exchange's)
    label: str = "open"  # "open" | "close": what the CSV timestamp marks
    # explicit role -> header; roles: timestamp, date, time, open, high, low, close, volume
    columns: Mapping[str, str] = field(default_factory=dict)
    timestamp_format: str | None = None  # strptime format, None = auto
    epoch_unit: str | None = None  # "s"|"ms"|"us"|"ns", None = auto by magnitude
    delimiter: str | None = None  # None = sniff from the header line
    price_precision: int | None = None  # None = infer (max decimals seen, cap 9)
    size_precision: int | None = None  # None = infer from volume column (cap 9)
    max_errors: int = 20  # how many problems to list


@dataclass(frozen=True)
class CsvResult:
    bars: BarFrame  # validated, strictly increasing ts_event (bar CLOSE, UTC ns int64)
    rows_read: int
    columns: dict[str, str]  # role -> header actually used
    ignored_columns: list[str]


# --------------------------------------------------------------------------------------------
# problems


class _Problems:
    """Collects (line, message) problems; messages are only built for the first few of a kind."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.total = 0
        self._items: list[tuple[int, int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.total += 1
        self._items.append((line, len(self._items), message))

    def add_mask(self, mask: np.ndarray, lines: np.ndarray, fmt: Callable[[int], str]) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        self.total += int(idx.size)
        for i in idx[: self.limit]:
            self._items.append((int(lines[i]), len(self._items), fmt(int(i))))

    def listed(self) -> list[tuple[int, str]]:
        return [(line, msg) for line, _, msg in sorted(self._items)[: self.limit]]


def _show(value: object, width: int = 40) -> str:
    text = str(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return repr(text)


# --------------------------------------------------------------------------------------------
# file, header and columns


def _fmt(
    template: str, strings: pa.ChunkedArray, extra: np.ndarray | None = None
) -> Callable[[int], str]:
    """A message builder for row ``i``: ``{value}`` is the raw cell, ``{extra}`` extra[i]."""

    def build(i: int) -> str:
        text = template.replace("{value}", _show(strings[i].as_py()))
        return text if extra is None else text.replace("{extra}", str(extra[i]))

    return build


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"CSV file not found: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise InputError(f"not a file: {path}", hint="give the path of a CSV file") from None
    except OSError as exc:
        raise InputError(
            f"cannot read {path}: {exc.strerror or exc}", hint="check the path"
        ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data[:4096].strip() and not data.strip():
        raise InputError(f"{path}: the file is empty", hint="export the bars again")
    head = data[:65536]
    looks_binary = b"\x00" in head
    if not looks_binary:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            looks_binary = exc.start < len(head) - 4  # a cut multi-byte char at the end is fine
    if looks_binary:
        raise InputError(
            f"{path}: not a CSV text file (binary data or not UTF-8 text)",
            hint="give a UTF-8 (or ASCII) CSV export; re-save it as 'CSV UTF-8' if needed",
        )
    return data


def _normalize(header: str) -> str:
    text = header.strip().strip('"').strip().lower()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    text = text.replace("_", " ")
    return re.sub(r"\s+", " ", text).strip()


def _is_unnamed(header: str) -> bool:
    norm = _normalize(header)
    return norm == "" or re.fullmatch(r"unnamed: ?\d+", norm) is not None


def _looks_like_value(text: str) -> bool:
    text = text.strip()
    return (
        bool(text)
        and bool(re.search(r"\d", text))
        and re.fullmatch(r"[\d\s.,:/+\-TZ$]+", text) is not None
    )


def _header(data: bytes, path: Path, spec: CsvSpec) -> tuple[list[str], str]:
    first = re.split(rb"\r\n|\r|\n", data[:1_000_000], maxsplit=1)[0]
    text = first.decode("utf-8", errors="replace")
    if not text.strip():
        raise InputError(
            f"{path}: the first line is blank; expected a header line",
            hint="the first line must name the columns, e.g. timestamp,open,high,low,close,volume",
        )
    if spec.delimiter is not None:
        delim = "\t" if spec.delimiter.lower() in ("tab", "\\t") else spec.delimiter
    else:
        counts = {d: text.count(d) for d in DELIMITERS}
        delim = max(DELIMITERS, key=lambda d: counts[d])
        if counts[delim] == 0:
            delim = ","
    names = next(csv.reader([text], delimiter=delim))
    return [n.strip() for n in names], delim


def _resolve_columns(
    names: list[str], spec: CsvSpec, path: Path, delim: str
) -> tuple[dict[str, int], list[str]]:
    norms = [_normalize(n) for n in names]
    roles: dict[str, int] = {}
    for role, header in spec.columns.items():
        if role not in ROLES:
            raise InputError(
                f"unknown column role {role!r} in csv.columns",
                hint=f"roles are: {', '.join(ROLES)}",
            )
        wanted = _normalize(str(header))
        matches = [i for i, n in enumerate(names) if n == header] or [
            i for i, n in enumerate(norms) if n == wanted
        ]
        if not matches:
            raise InputError(
                f"{path}: csv.columns.{role}={header!r} but the header has no such column; "
                f"headers found: {names}",
                hint="use one of the headers found (matched case-insensitively)",
            )
        roles[role] = matches[0]
    taken = set(roles.values())

    def find(role: str) -> int | None:
        for alias in ALIASES[role]:
            for i, n in enumerate(norms):
                if n == alias and i not in taken:
                    return i
        return None

    explicit_ts = {"timestamp", "date", "time"} & roles.keys()
    if not explicit_ts:
        found = find("timestamp")
        if found is not None:
            roles["timestamp"] = found
        else:
            for role in ("date", "time"):
                found = find(role)
                if found is not None:
                    roles[role] = found
    elif "timestamp" not in roles:
        for role in ("date", "time"):
            if role not in roles:
                found = find(role)
                if found is not None:
                    roles[role] = found
    if "timestamp" not in roles:
        if "date" in roles and "time" not in roles:
            roles["timestamp"] = roles.pop("date")
        elif "time" in roles and "date" not in roles:
            roles["timestamp"] = roles.pop("time")
    else:
        roles.pop("date", None)
        roles.pop("time", None)
    taken = set(roles.values())
    for role in (*PRICE_ROLES, "volume"):
        if role not in roles:
            found = find(role)
            if found is not None:
                roles[role] = found
                taken.add(found)

    missing = [r for r in ("timestamp", *PRICE_ROLES, "volume") if r not in roles]
    if "timestamp" in missing and "date" in roles:
        missing.remove("timestamp")
    if missing:
        if len(names) == 1:
            shown = repr(names[0]) if len(names[0]) <= 80 else repr(names[0][:79] + "…")
            raise InputError(
                f"{path}: the header line has a single column {shown} when split on "
                f"{delim!r}; the delimiter is probably wrong",
                hint="set the delimiter explicitly with config csv.delimiter (one of , ; tab |)",
            )
        if sum(_looks_like_value(n) for n in names) * 2 >= len(names):
            raise InputError(
                f"{path}: no header line: the first line looks like data ({','.join(names)[:80]})",
                hint="add a header line, e.g. timestamp,open,high,low,close,volume",
            )
        accepted = "; ".join(f"{r}: {', '.join(ALIASES[r])}" for r in ALIASES)
        raise InputError(
            f"{path}: missing required column(s): {', '.join(missing)}; headers found: "
            f"{names}; accepted names (case-insensitive) — {accepted}",
            hint=_MAPPING_HINT,
        )
    return roles, [
        names[i] if not _is_unnamed(names[i]) else f"(unnamed column {i + 1})"
        for i in range(len(names))
        if i not in set(roles.values()) and not (i == 0 and _is_unnamed(names[i]))
    ]


# --------------------------------------------------------------------------------------------
# reading


@dataclass
class _Raw:
    table: pa.Table
    lines: np.ndarray  # file line number of every table row
    bad_rows: list[tuple[int, str]]  # (line, message) for rows with a wrong field count


def _read_table(data: bytes, path: Path, names: list[str], delim: str, used: list[int]) -> _Raw:
    cols = [f"f{i}" for i in range(len(names))]
    invalid: list[tuple[int | None, int, int]] = []

    def handler(row: Any) -> str:
        invalid.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    def read(threads: bool) -> pa.Table:
        try:
            return pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(
                    column_names=cols, skip_rows=1, use_threads=threads, block_size=4 << 20
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
            if "UTF8" in text or "utf8" in text.lower():
                raise InputError(
                    f"{path}: not valid UTF-8 text",
                    hint="re-save the file as 'CSV UTF-8'",
                ) from None
            raise InputError(
                f"{path}: cannot parse the CSV: {text.splitlines()[0][:200]}",
                hint="check the delimiter (csv.delimiter) and quoting of the file",
            ) from None

    table = read(True)
    if invalid and any(number is None for number, _, _ in invalid):
        invalid.clear()
        table = read(False)
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
# numbers


@dataclass
class _Num:
    values: np.ndarray  # float64, garbage where not ok
    ok: np.ndarray  # parsed to a finite number
    missing: np.ndarray  # empty cell
    clean: pa.ChunkedArray  # the strings after trimming whitespace and "$"
    raw: pa.ChunkedArray

    def decimals(self, significant: bool) -> np.ndarray:
        strings = pc.utf8_rtrim(self.clean, "0") if significant else self.clean
        pos = np.asarray(pc.find_substring(strings, ".").to_numpy(), dtype=np.int64)
        length = np.asarray(pc.binary_length(strings).to_numpy(), dtype=np.int64)
        return np.where(pos >= 0, length - pos - 1, 0)


def _to_float(strings: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(strings, pa.float64()).to_numpy(), dtype=np.float64)


def _parse_numbers(raw: pa.ChunkedArray) -> _Num:
    clean = raw
    ok: np.ndarray | None = None
    try:
        values = _to_float(raw)
    except pa.ArrowInvalid:
        clean = pc.replace_substring(pc.utf8_trim_whitespace(raw), "$", "")
        try:
            values = _to_float(clean)
        except pa.ArrowInvalid:
            match = pc.match_substring_regex(clean, _NUMBER_RE)
            ok = np.asarray(match.to_numpy(zero_copy_only=False), dtype=bool)
            values = _to_float(pc.if_else(match, clean, "0"))
    length = np.asarray(pc.binary_length(clean).to_numpy(), dtype=np.int64)
    missing = length == 0
    finite = np.isfinite(values)
    ok = finite if ok is None else ok & finite
    return _Num(values, ok & ~missing, missing, clean, raw)


def _round(values: np.ndarray, precision: int) -> np.ndarray:
    scale = 10.0**precision
    return np.rint(values * scale) / scale


# --------------------------------------------------------------------------------------------
# timestamps


@dataclass
class _Ts:
    ns: np.ndarray  # int64: UTC ns if aware, local wall-clock ns if naive
    ok: np.ndarray
    aware: bool
    described: str  # e.g. "ISO 8601 without offset", for messages


def _samples(strings: pa.ChunkedArray) -> list[str]:
    n = len(strings)
    idx = np.unique(np.concatenate([np.arange(min(n, 100)), np.linspace(0, n - 1, 100)]))
    values = pc.take(strings, pa.array(idx.astype(np.int64))).to_pylist()
    return [v.strip() for v in values if v is not None and v.strip()]


def _strptime_ok(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _detect_kind(samples: list[str], spec: CsvSpec) -> tuple[str, str]:
    """(kind, detail): ("format", fmt) | ("epoch", "") | ("iso", "aware"/"naive")."""
    if spec.timestamp_format:
        return "format", spec.timestamp_format
    if not samples:
        return "iso", "naive"
    first = samples[0]
    if spec.epoch_unit:
        return "epoch", ""
    if _INT_RE.fullmatch(first) or _FLOAT_RE.fullmatch(first):
        compact = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(first))
        if (
            compact
            and first.isdigit()
            and 1900 <= int(first[:4]) <= 2200
            and _strptime_ok(first, compact)
        ):
            return "format", compact
        return "epoch", ""
    m = _ISO_RE.fullmatch(first)
    if m:
        return "iso", "aware" if m.group(2) else "naive"
    candidates = [f for f in _CANDIDATE_FORMATS if _strptime_ok(first, f)]
    for fmt in candidates:
        if all(_strptime_ok(s, fmt) for s in samples):
            return "format", fmt
    return ("format", candidates[0]) if candidates else ("format", "")


def _ns_of(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(arr, pa.int64()).to_numpy(), dtype=np.int64)


def _parse_iso(strings: pa.ChunkedArray, aware: bool) -> tuple[np.ndarray, np.ndarray]:
    target = pa.timestamp("ns", "UTC") if aware else pa.timestamp("ns")
    n = len(strings)
    try:
        return _ns_of(pc.cast(strings, target)), np.ones(n, dtype=bool)
    except pa.ArrowInvalid:
        pass
    strings = pc.utf8_trim_whitespace(strings)
    pattern = f"^{_ISO_NAIVE}{_ISO_OFFSET}$" if aware else f"^{_ISO_NAIVE}$"
    match = pc.match_substring_regex(strings, pattern)
    filler = "1970-01-01T00:00:00Z" if aware else "1970-01-01"
    try:
        ns = _ns_of(pc.cast(pc.if_else(match, strings, filler), target))
        return ns, np.asarray(match.to_numpy(zero_copy_only=False), dtype=bool)
    except pa.ArrowInvalid:
        pass
    # rare: shaped like ISO but not a valid date/time (month 13 …) — per value, error path only
    ns = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for i, value in enumerate(strings.to_pylist()):
        m = _ISO_RE.fullmatch(value or "")
        if not m or bool(m.group(2)) != aware:
            continue
        try:
            dt = datetime.fromisoformat(m.group(1).replace(" ", "T")[:26])
            if aware:
                off = m.group(2)
                dt = datetime.fromisoformat(
                    dt.isoformat()
                    + ("+00:00" if off == "Z" else off if len(off) > 3 else off + ":00")
                )
            else:
                dt = dt.replace(tzinfo=UTC)
        except ValueError:
            continue
        ns[i] = (dt - epoch) // _MICRO * 1000
        ok[i] = True
    return ns, ok


_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1) - datetime(1970, 1, 1)


def _parse_epoch(strings: pa.ChunkedArray, spec: CsvSpec) -> tuple[np.ndarray, np.ndarray]:
    ints: np.ndarray | None = None
    try:
        ints = np.asarray(pc.cast(strings, pa.int64()).to_numpy(), dtype=np.int64)
        ok = np.ones(len(ints), dtype=bool)
        values = ints.astype(np.float64)
    except pa.ArrowInvalid:
        clean = pc.utf8_trim_whitespace(strings)
        match = pc.match_substring_regex(clean, r"^[+-]?\d+(\.\d*)?$")
        ok = np.asarray(match.to_numpy(zero_copy_only=False), dtype=bool)
        filled = pc.if_else(match, clean, "0")
        values = _to_float(filled)
        if not bool(pc.any(pc.match_substring(filled, ".")).as_py()):
            ints = np.asarray(pc.cast(filled, pa.int64()).to_numpy(), dtype=np.int64)
    if spec.epoch_unit:
        unit = spec.epoch_unit
    else:
        valid = values[ok]
        sample = valid[:: max(1, valid.size // 1000)]
        magnitude = float(np.median(np.abs(sample))) if sample.size else 0.0
        thresholds = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
        unit = next((u for limit, u in thresholds if magnitude < limit), "ns")
    mult = EPOCH_MULT[unit]
    ok &= np.abs(values) < 9.2e18 / mult
    if ints is not None:
        ns = np.where(ok, ints, 0) * mult
    else:
        ns = np.rint(np.where(ok, values, 0.0) * mult).astype(np.int64)
    return ns, ok


def _parse_format(strings: pa.ChunkedArray, fmt: str) -> tuple[np.ndarray, np.ndarray, bool]:
    aware = "%z" in fmt or "%Z" in fmt
    if "%f" in fmt or aware or not fmt:
        import pandas as pd

        if not fmt:
            n = len(strings)
            return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool), False
        series = pd.Series(strings.to_numpy(zero_copy_only=False), dtype=object)
        try:
            parsed = pd.to_datetime(series, format=fmt, errors="coerce", utc=aware)
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"invalid csv.timestamp_format {fmt!r}: {exc}",
                hint="use a strptime format, e.g. %Y-%m-%d %H:%M:%S",
            ) from None
        ok = np.asarray(parsed.notna().to_numpy(), dtype=bool)
        ns = np.asarray(parsed.to_numpy(dtype="datetime64[ns]").view(np.int64), dtype=np.int64)
        return np.where(ok, ns, 0), ok, aware
    try:
        parsed_pa = pc.strptime(strings, format=fmt, unit="ns", error_is_null=True)
    except pa.ArrowInvalid as exc:
        raise InputError(
            f"invalid csv.timestamp_format {fmt!r}: {exc}",
            hint="use a strptime format, e.g. %Y-%m-%d %H:%M:%S",
        ) from None
    ok = np.asarray(pc.is_valid(parsed_pa).to_numpy(zero_copy_only=False), dtype=bool)
    ns = _ns_of(pc.fill_null(parsed_pa, pa.scalar(0, pa.timestamp("ns"))))
    return ns, ok, False


def _parse_timestamps(strings: pa.ChunkedArray, spec: CsvSpec) -> _Ts:
    kind, detail = _detect_kind(_samples(strings), spec)
    if kind == "epoch":
        ns, ok = _parse_epoch(strings, spec)
        return _Ts(ns, ok, True, "epoch integers")
    if kind == "iso":
        aware = detail == "aware"
        ns, ok = _parse_iso(strings, aware)
        desc = "ISO 8601 with UTC offset" if aware else "ISO 8601 without offset"
        return _Ts(ns, ok, aware, desc)
    ns, ok, aware = _parse_format(strings, detail)
    return _Ts(ns, ok, aware, f"format {detail!r}" if detail else "no known format")


def _localize(
    local_ns: np.ndarray, tz: str, ambiguous: str = "raise", nonexistent: str = "raise"
) -> np.ndarray:
    if tz in ("UTC", "Etc/UTC", "utc"):
        return local_ns
    arr = pa.array(local_ns, type=pa.timestamp("ns"))
    return _ns_of(pc.assume_timezone(arr, tz, ambiguous=ambiguous, nonexistent=nonexistent))


def _local_of(utc_ns: np.ndarray, tz: str) -> np.ndarray:
    if tz in ("UTC", "Etc/UTC", "utc"):
        return utc_ns
    return _ns_of(pc.local_timestamp(pa.array(utc_ns, type=pa.timestamp("ns", tz))))


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
    spec: CsvSpec = CsvSpec(),
) -> CsvResult:
    """Read, parse and validate one CSV file of OHLCV bars.

    ``ts_event`` of the result is the bar close: ``label="open"`` adds ``bar_interval_ns`` to the
    timestamp (for DAY bars, ``calendar_days > 0``, it is local midnight of the timestamp's local
    date + ``calendar_days``); ``label="close"`` keeps the timestamp. Raises ``InputError`` for
    file-level problems and ``CsvValidationError`` listing (line, message) problems otherwise.
    """
    _check_args(spec, bar_interval_ns, calendar_days)
    path = Path(path)
    data = _read_bytes(path)
    names, delim = _header(data, path, spec)
    roles, ignored = _resolve_columns(names, spec, path, delim)
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

    problems = _Problems(spec.max_errors)
    for line, message in raw.bad_rows:
        problems.add(line, message)
    problems.add_mask(blank, lines, lambda i: "blank line")
    headers = {role: names[i] for role, i in roles.items()}

    # numbers
    nums = {role: _parse_numbers(col(role)) for role in (*PRICE_ROLES, "volume")}
    for role, num in nums.items():
        head = headers[role]
        problems.add_mask(num.missing & ~blank, lines, _fmt(f"{head}: missing value", num.raw))
        problems.add_mask(
            ~num.ok & ~num.missing,
            lines,
            _fmt(f"{head}: cannot parse {{value}} as a number", num.raw),
        )

    prices_ok = np.logical_and.reduce([nums[r].ok for r in PRICE_ROLES])
    if spec.price_precision is None:
        dmax = max(
            (int(nums[r].decimals(False)[nums[r].ok].max(initial=0)) for r in PRICE_ROLES),
            default=0,
        )
        price_precision = min(dmax, MAX_PRECISION)
    else:
        price_precision = spec.price_precision
        for role in PRICE_ROLES:
            dec = nums[role].decimals(True)
            problems.add_mask(
                nums[role].ok & (dec > price_precision),
                lines,
                _fmt(
                    f"{headers[role]}: "
                    "{value} has {extra} decimals, "
                    f"more than price_precision={price_precision}",
                    nums[role].raw,
                    dec,
                ),
            )
    vol = nums["volume"]
    if spec.size_precision is None:
        size_precision = min(int(vol.decimals(True)[vol.ok].max(initial=0)), MAX_PRECISION)
    else:
        size_precision = spec.size_precision
        vdec = vol.decimals(True)
        problems.add_mask(
            vol.ok & (vdec > size_precision),
            lines,
            lambda i: (
                f"{headers['volume']}: {_show(vol.raw[i].as_py())} has {vdec[i]} decimals, "
                f"more than size_precision={size_precision}"
            ),
        )

    o, h, lo, c = (_round(nums[r].values, price_precision) for r in PRICE_ROLES)
    v = _round(vol.values, size_precision)
    for role, arr in zip(PRICE_ROLES, (o, h, lo, c), strict=True):
        problems.add_mask(
            nums[role].ok & (arr <= 0),
            lines,
            _fmt(f"non-positive price: {headers[role]}={{value}}", nums[role].raw),
        )
    problems.add_mask(vol.ok & (v < 0), lines, lambda i: f"negative volume: {vol.raw[i].as_py()}")

    def ohlc(i: int) -> str:
        return f"open={float(o[i])} high={float(h[i])} low={float(lo[i])} close={float(c[i])}"

    problems.add_mask(
        prices_ok & (h < np.maximum(o, c)), lines, lambda i: f"high < max(open, close): {ohlc(i)}"
    )
    problems.add_mask(
        prices_ok & (lo > np.minimum(o, c)), lines, lambda i: f"low > min(open, close): {ohlc(i)}"
    )
    problems.add_mask(prices_ok & (h < lo), lines, lambda i: f"high < low: {ohlc(i)}")

    # timestamps
    if "timestamp" in roles:
        ts_strings = col("timestamp")
        ts_missing = empty_cells["timestamp"]
        ts_head = headers["timestamp"]
    else:
        ts_strings = pc.binary_join_element_wise(col("date"), col("time"), " ")
        ts_missing = empty_cells["date"] | empty_cells["time"]
        ts_head = f"{headers['date']} + {headers['time']}"
    parsed = _parse_timestamps(ts_strings, spec)
    ts_ok = parsed.ok & ~ts_missing
    problems.add_mask(ts_missing & ~blank, lines, lambda i: f"{ts_head}: missing value")
    first_ok = np.flatnonzero(ts_ok)
    example = (
        f"; expected {parsed.described} like line {lines[first_ok[0]]}: "
        f"{_show(ts_strings[int(first_ok[0])].as_py())}"
        if first_ok.size
        else "; set csv.timestamp_format (strptime) or csv.epoch_unit"
    )
    problems.add_mask(
        ~parsed.ok & ~ts_missing,
        lines,
        lambda i: f"{ts_head}: cannot parse timestamp {_show(ts_strings[i].as_py())}{example}",
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
            utc = _localize(raw_ns, tz)
        except pa.ArrowInvalid:
            early = _localize(raw_ns, tz, "earliest", "earliest")
            late = _localize(raw_ns, tz, "latest", "latest")
            gap = late - early
            nonexistent = ts_ok & (gap > 0) & (gap <= 1_000)
            ambiguous = ts_ok & (gap > 1_000)
            problems.add_mask(
                nonexistent,
                lines,
                lambda i: (
                    f"{ts_head}: nonexistent local time {_show(ts_strings[i].as_py())} in {tz} "
                    "(skipped by the DST change)"
                ),
            )
            problems.add_mask(
                ambiguous,
                lines,
                lambda i: (
                    f"{ts_head}: ambiguous local time {_show(ts_strings[i].as_py())} in {tz} "
                    "(occurs twice at the DST change); export with UTC offsets or in UTC"
                ),
            )
            ts_ok &= ~(nonexistent | ambiguous)
            utc = early

    if daily_open:
        local = raw_ns if not parsed.aware else _local_of(np.where(ts_ok, utc, 0), tz)
        midnight = np.floor_divide(local, DAY_NS) * DAY_NS + calendar_days * DAY_NS
        ts_event = _localize(midnight, tz, "earliest", "latest")
    elif spec.label == "open":
        ts_event = utc + bar_interval_ns
    else:
        ts_event = utc

    # order: ascending, or newest-first throughout (the majority direction decides)
    valid_idx = np.flatnonzero(ts_ok)
    tv = ts_event[valid_idx]
    diff = np.diff(tv)
    descending = int((diff < 0).sum()) > int((diff > 0).sum())
    after = valid_idx[1:]
    before = valid_idx[:-1]

    def dup_msg(k: int) -> str:
        i = int(after[k])
        return (
            f"duplicate timestamp {_show(ts_strings[i].as_py())} "
            f"(same bar as line {lines[before[k]]})"
        )

    def order_msg(k: int) -> str:
        i, j = int(after[k]), int(before[k])
        rel = "after" if descending else "before"
        return (
            f"timestamp out of order: {_show(ts_strings[i].as_py())} is {rel} line "
            f"{lines[j]} ({_show(ts_strings[j].as_py())})"
        )

    after_lines = lines[after] if after.size else np.empty(0, dtype=np.int64)
    problems.add_mask(diff == 0, after_lines, dup_msg)
    problems.add_mask((diff > 0) if descending else (diff < 0), after_lines, order_msg)

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
        np.ascontiguousarray(o[order]),
        np.ascontiguousarray(h[order]),
        np.ascontiguousarray(lo[order]),
        np.ascontiguousarray(c[order]),
        np.ascontiguousarray(v[order]),
        price_precision,
        size_precision,
    )
    return CsvResult(
        bars=bars,
        rows_read=rows_read,
        columns={role: names[i] for role, i in roles.items()},
        ignored_columns=ignored,
    )

"""Timestamp parsing for CSV bar files: format detection and vectorized parsing to int64 ns.

Accepted: ISO 8601 with or without a UTC offset, epoch integers (s/ms/us/ns, the unit guessed from
the magnitude unless given), compact ``YYYYMMDD[HHMM[SS]]`` and the common date/time layouts of
:data:`_CANDIDATE_FORMATS` (the first one that parses every sampled value), or an explicit strptime
format. The time zone conversions between local wall-clock and UTC ns live in ``ntrader.sessions``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ntrader.errors import InputError

__all__ = ["EPOCH_MULT", "ParsedTimestamps", "parse_timestamps", "timestamp_kind"]

EPOCH_MULT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}

_ISO_NAIVE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
_ISO_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)"
_ISO_RE = re.compile(rf"({_ISO_NAIVE})\s*({_ISO_OFFSET})?")
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


@dataclass
class ParsedTimestamps:
    ns: np.ndarray  # int64: UTC ns if aware, local wall-clock ns if naive
    ok: np.ndarray
    aware: bool
    described: str  # e.g. "ISO 8601 without offset", for messages


def _samples(strings: pa.ChunkedArray) -> list[str]:
    n = len(strings)
    if n == 0:
        return []
    idx = np.unique(np.concatenate([np.arange(min(n, 100)), np.linspace(0, n - 1, 100)]))
    values = pc.take(strings, pa.array(idx.astype(np.int64))).to_pylist()
    return [v.strip() for v in values if v is not None and v.strip()]


def _strptime_ok(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _detect_kind(
    samples: list[str], timestamp_format: str | None, epoch_unit: str | None
) -> tuple[str, str]:
    """(kind, detail): ("format", fmt) | ("epoch", "") | ("iso", "aware"/"naive")."""
    if timestamp_format:
        return "format", timestamp_format
    if not samples:
        return "iso", "naive"
    first = samples[0]
    if epoch_unit:
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


def _parse_epoch(strings: pa.ChunkedArray, epoch_unit: str | None) -> tuple[np.ndarray, np.ndarray]:
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
        values = np.asarray(pc.cast(filled, pa.float64()).to_numpy(), dtype=np.float64)
        if not bool(pc.any(pc.match_substring(filled, ".")).as_py()):
            ints = np.asarray(pc.cast(filled, pa.int64()).to_numpy(), dtype=np.int64)
    if epoch_unit:
        unit = epoch_unit
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


def parse_timestamps(
    strings: pa.ChunkedArray, timestamp_format: str | None, epoch_unit: str | None
) -> ParsedTimestamps:
    """Parse a column of timestamp strings, detecting the format from a sample of values."""
    kind, detail = _detect_kind(_samples(strings), timestamp_format, epoch_unit)
    if kind == "epoch":
        ns, ok = _parse_epoch(strings, epoch_unit)
        return ParsedTimestamps(ns, ok, True, "epoch integers")
    if kind == "iso":
        aware = detail == "aware"
        ns, ok = _parse_iso(strings, aware)
        desc = "ISO 8601 with UTC offset" if aware else "ISO 8601 without offset"
        return ParsedTimestamps(ns, ok, aware, desc)
    ns, ok, aware = _parse_format(strings, detail)
    return ParsedTimestamps(ns, ok, aware, f"format {detail!r}" if detail else "no known format")


# Epoch values before this instant are taken for row numbers or ids, not timestamps.
_EPOCH_FLOOR_NS = 31_536_000 * 1_000_000_000  # 1971-01-01


def timestamp_kind(
    values: list[str], timestamp_format: str | None = None, epoch_unit: str | None = None
) -> str | None:
    """What a sample of a column's cells holds: ``"datetime"`` (dates or date-times: ISO 8601,
    a known layout, compact ``YYYYMMDD``, ``timestamp_format``), ``"epoch"`` (integers that are
    plausible epoch timestamps, not a row counter) or None (blank, anything else)."""
    cells = [v.strip() for v in values if v and v.strip()]
    if not cells:
        return None
    kind, _ = _detect_kind(cells, timestamp_format, epoch_unit)
    parsed = parse_timestamps(pa.chunked_array([pa.array(cells)]), timestamp_format, epoch_unit)
    if not bool(parsed.ok.all()):
        return None
    if kind != "epoch":
        return "datetime"
    if all(_INT_RE.fullmatch(c) for c in cells):
        ints = [int(c) for c in cells]
        if len(ints) > 1 and all(b - a == 1 for a, b in itertools.pairwise(ints)):
            return None  # 0, 1, 2 … : a row counter (pandas RangeIndex)
    return "epoch" if bool((parsed.ns >= _EPOCH_FLOOR_NS).all()) else None

"""Row validation for CSV bar files: per-line problem collection, price/volume parsing with
precision checks, OHLC sanity checks and timestamp order checks.

Every check adds (file line, message) problems to a :class:`Problems`; messages are built only for
the first few rows of each kind, so a file with a million bad rows is still reported quickly.

The rows' spacing against the bar spec (:func:`measure_spacing`, a :class:`Spacing`): a daily
file imported as 1-minute bars, or 5-minute rows as 1-minute bars, gets the wrong bar close (too
early: look-ahead). The modal step between consecutive rows, on the local wall clock (daily rows
stay whole days apart across DST), is the bar size: overnight and weekend jumps and a few missing
bars do not change it. Fewer than :data:`MIN_ROWS` rows cannot be judged and pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ntrader.importing.columns import PRICE_ROLES
from ntrader.symbols import MAX_STEP

__all__ = [
    "MAX_PRECISION",
    "MIN_ROWS",
    "Ohlcv",
    "Problems",
    "Spacing",
    "check_order",
    "check_prices",
    "describe_step",
    "measure_spacing",
    "modal_step",
    "show",
    "spec_for_step",
]

MAX_PRECISION = 9
SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS

_NUMBER_RE = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


class Problems:
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


def show(value: object, width: int = 40) -> str:
    """A cell value for a message: repr, cut to ``width`` characters."""
    text = str(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return repr(text)


def _fmt(
    template: str, strings: pa.ChunkedArray, extra: np.ndarray | None = None
) -> Callable[[int], str]:
    """A message builder for row ``i``: ``{value}`` is the raw cell, ``{extra}`` extra[i]."""

    def build(i: int) -> str:
        text = template.replace("{value}", show(strings[i].as_py()))
        return text if extra is None else text.replace("{extra}", str(extra[i]))

    return build


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


def check_adjusted(
    adjusted: pa.ChunkedArray,
    close: pa.ChunkedArray,
    head: str,
    blank: np.ndarray,
    lines: np.ndarray,
    problems: Problems,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The optional adjusted-close cells (an ``Adj Close`` column): (values, NaN where empty;
    half the rounding unit of each; the same for the close cells). A cell that is not a
    positive number is a problem."""
    adj, cls = _parse_numbers(adjusted), _parse_numbers(close)
    problems.add_mask(
        ~adj.ok & ~adj.missing & ~blank,
        lines,
        _fmt(f"{head}: cannot parse {{value}} as a number", adj.raw),
    )
    problems.add_mask(
        adj.ok & (adj.values <= 0),
        lines,
        _fmt(f"{head}: {{value}} is not a positive price", adj.raw),
    )

    def half(num: _Num) -> np.ndarray:
        return 0.5 * 10.0 ** -num.decimals(False).astype(np.float64)

    return np.where(adj.ok, adj.values, np.nan), half(adj), half(cls)


def _round(values: np.ndarray, precision: int) -> np.ndarray:
    scale = 10.0**precision
    return np.rint(values * scale) / scale


@dataclass(frozen=True)
class Ohlcv:
    """Parsed price and volume columns, rounded to their precision (garbage where a row has
    problems)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    price_precision: int
    size_precision: int


def check_prices(
    columns: Mapping[str, pa.ChunkedArray],
    headers: Mapping[str, str],
    blank: np.ndarray,
    lines: np.ndarray,
    problems: Problems,
    *,
    price_precision: int | None,
    size_precision: int | None,
) -> Ohlcv:
    """Parse the open/high/low/close/volume cells (role -> strings) and report missing or
    unparseable values, too many decimals, non-positive prices, negative volumes and inconsistent
    OHLC. A precision of None is inferred: the most decimals seen, capped at MAX_PRECISION."""
    nums = {role: _parse_numbers(columns[role]) for role in (*PRICE_ROLES, "volume")}
    for role, num in nums.items():
        head = headers[role]
        problems.add_mask(num.missing & ~blank, lines, _fmt(f"{head}: missing value", num.raw))
        problems.add_mask(
            ~num.ok & ~num.missing,
            lines,
            _fmt(f"{head}: cannot parse {{value}} as a number", num.raw),
        )

    prices_ok = np.logical_and.reduce([nums[r].ok for r in PRICE_ROLES])
    if price_precision is None:
        dmax = max(
            (int(nums[r].decimals(False)[nums[r].ok].max(initial=0)) for r in PRICE_ROLES),
            default=0,
        )
        price_precision = min(dmax, MAX_PRECISION)
    else:
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
    if size_precision is None:
        size_precision = min(int(vol.decimals(True)[vol.ok].max(initial=0)), MAX_PRECISION)
    else:
        vdec = vol.decimals(True)
        problems.add_mask(
            vol.ok & (vdec > size_precision),
            lines,
            lambda i: (
                f"{headers['volume']}: {show(vol.raw[i].as_py())} has {vdec[i]} decimals, "
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
    return Ohlcv(o, h, lo, c, v, price_precision, size_precision)


# --------------------------------------------------------------------------------------------
# order


def check_order(
    ts_event: np.ndarray,
    ts_ok: np.ndarray,
    ts_strings: pa.ChunkedArray,
    lines: np.ndarray,
    problems: Problems,
) -> bool:
    """Report duplicate and out-of-order timestamps among the valid ones; True when the file is
    newest-first (the majority direction decides)."""
    valid_idx = np.flatnonzero(ts_ok)
    tv = ts_event[valid_idx]
    diff = np.diff(tv)
    descending = int((diff < 0).sum()) > int((diff > 0).sum())
    after = valid_idx[1:]
    before = valid_idx[:-1]

    def dup_msg(k: int) -> str:
        i = int(after[k])
        return (
            f"duplicate timestamp {show(ts_strings[i].as_py())} "
            f"(same bar as line {lines[before[k]]})"
        )

    def order_msg(k: int) -> str:
        i, j = int(after[k]), int(before[k])
        rel = "after" if descending else "before"
        return (
            f"timestamp out of order: {show(ts_strings[i].as_py())} is {rel} line "
            f"{lines[j]} ({show(ts_strings[j].as_py())})"
        )

    after_lines = lines[after] if after.size else np.empty(0, dtype=np.int64)
    problems.add_mask(diff == 0, after_lines, dup_msg)
    problems.add_mask((diff > 0) if descending else (diff < 0), after_lines, order_msg)
    return descending


# --------------------------------------------------------------------------------------------
# spacing

MIN_ROWS = 3  # distinct timestamps needed to judge the spacing (two steps)

_UNITS = (
    ("DAY", DAY_NS),
    ("HOUR", 3_600 * SECOND_NS),
    ("MINUTE", 60 * SECOND_NS),
    ("SECOND", SECOND_NS),
)


@dataclass(frozen=True)
class Spacing:
    """How far apart a file's rows are, and the step the bar spec expects.

    ``verdict``: ``unknown`` (too few rows), ``ok``, ``finer`` (rows closer than a bar),
    ``coarser`` (a whole multiple of an intraday bar below a day, or of a DAY bar: bars of that
    size, or that series with gaps) or ``mismatch`` (neither: rows a day or more apart as
    intraday bars, or no multiple of the bar)."""

    step_ns: int | None  # the modal step between consecutive distinct rows, None if unjudged
    step_count: int  # how many steps have that length
    expected_ns: int  # the bar's length (DAY bars: calendar days x 24 h)
    expected_count: int  # how many steps have the bar's length
    daily: bool  # the bar spec is a DAY spec
    rows: int  # distinct valid timestamps
    first_ns: int  # ts_event range of those rows (UTC ns; 0 when there are none)
    last_ns: int

    @property
    def verdict(self) -> str:
        step, expected = self.step_ns, self.expected_ns
        if step is None:
            return "unknown"
        if step == expected or 2 * self.expected_count >= self.step_count:
            return "ok"
        if step < expected:
            return "finer"
        if step % expected == 0 and (self.daily or step < DAY_NS):
            return "coarser"
        return "mismatch"


def modal_step(stamps: np.ndarray) -> tuple[int | None, int, dict[int, int]]:
    """(modal step, its count, step -> count) of sorted distinct ``stamps``; the shortest step
    wins a tie. None when fewer than :data:`MIN_ROWS` stamps."""
    if stamps.size < MIN_ROWS:
        return None, 0, {}
    values, counts = np.unique(np.diff(stamps), return_counts=True)
    i = int(np.argmax(counts))  # first maximum = the shortest of the most common steps
    return int(values[i]), int(counts[i]), dict(zip(values.tolist(), counts.tolist(), strict=True))


def measure_spacing(
    local_ns: np.ndarray, ts_event: np.ndarray, bar_interval_ns: int, calendar_days: int
) -> Spacing:
    """The spacing of rows stamped ``local_ns`` (local wall-clock ns of the VALID rows, any
    order, duplicates allowed) whose bars close at ``ts_event``."""
    stamps = np.unique(np.asarray(local_ns, dtype=np.int64))
    expected = calendar_days * DAY_NS if calendar_days > 0 else int(bar_interval_ns)
    step, count, counts = modal_step(stamps)
    events = np.asarray(ts_event, dtype=np.int64)
    return Spacing(
        step_ns=step,
        step_count=count,
        expected_ns=expected,
        expected_count=counts.get(expected, 0),
        daily=calendar_days > 0,
        rows=int(stamps.size),
        first_ns=int(events.min()) if events.size else 0,
        last_ns=int(events.max()) if events.size else 0,
    )


def describe_step(step_ns: int) -> str:
    """``1 day``, ``5 minutes``, ``90 seconds``, ``2.5 seconds``: the largest whole unit."""
    for name, unit in _UNITS:
        if step_ns % unit == 0:
            n = step_ns // unit
            return f"{n} {name.lower()}{'s' if n != 1 else ''}"
    return f"{step_ns / SECOND_NS:g} seconds"


def spec_for_step(step_ns: int, price_type: str) -> str | None:
    """The bar spec of bars ``step_ns`` long (``1-DAY-LAST``), None when no spec has that
    step (not whole seconds, or more than MAX_STEP of every unit it divides)."""
    for name, unit in _UNITS:
        if step_ns % unit == 0 and 1 <= step_ns // unit <= MAX_STEP:
            return f"{step_ns // unit}-{name}-{price_type}"
    return None

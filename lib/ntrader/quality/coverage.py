"""The coverage matrix: for each bar type, each exchange session — complete, partial (bars missing
inside the session), missing, IB had no data — from the ``ts_event`` column alone.

Days that are not sessions of a bar type's calendar (weekends, holidays) are never cells of its
row: they are ``NOT_SESSION`` and drawn blank. Without an explicit range, the sessions before a bar
type's first bar and after its last are ``OUTSIDE`` (it was never stored there), not missing;
with ``start``/``end`` every session of the range counts. When there are more sessions than
``max_columns``, cells are weeks or months (:meth:`Coverage.columns`): a period is complete when
all of its sessions are, missing when none has a bar, otherwise partial, and "IB had no data" when
every incomplete session of it is one IB answered "no data" for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ntrader.sessions import (
    bar_grid,
    calendar_for_venue,
    calendar_timezone,
    expand_grid,
    local_dates,
    local_hour_ns,
    sessions_between,
)
from ntrader.symbols import instrument_of, spec_of, spec_step

# cell codes (their order is the colour scale's)
NOT_SESSION, OUTSIDE, MISSING, NODATA, PARTIAL, COMPLETE = -1, 0, 1, 2, 3, 4
STATUS = {
    OUTSIDE: "not stored (before the first / after the last bar)",
    MISSING: "missing",
    NODATA: "IB had no data",
    PARTIAL: "partial",
    COMPLETE: "complete",
}


class OfBarType:
    """Something about one bar type (``bar_type``): its instrument id and bar spec."""

    bar_type: str

    @property
    def instrument_id(self) -> str:
        return instrument_of(self.bar_type)

    @property
    def spec(self) -> str:
        return spec_of(self.bar_type)


@dataclass
class Row(OfBarType):
    """One bar type over the matrix's dates: bars present / expected per date (0 / 0 where the
    date is not one of its sessions) and each date's code."""

    bar_type: str
    present: np.ndarray  # int64 per date
    expected: np.ndarray  # int64 per date
    code: np.ndarray  # int8 per date


@dataclass
class Column:
    """A cell column: one session, or the sessions of a week or a month."""

    label: str
    first: dt.date
    last: dt.date
    index: np.ndarray  # the dates (indices into Coverage.dates) it holds


@dataclass
class Coverage:
    dates: np.ndarray  # datetime64[D]: every session date of any row, ascending
    rows: list[Row]
    start: dt.date | None
    end: dt.date | None

    def columns(self, max_columns: int = 120) -> tuple[str, list[Column]]:
        """The cell columns: ``("session", …)`` while the dates fit ``max_columns``, else
        ``("week", …)`` (ISO weeks) or ``("month", …)``."""
        days = [d.item() for d in self.dates]
        for unit, key in (
            ("session", lambda d: d.isoformat()),
            ("week", lambda d: "{}-W{:02d}".format(*d.isocalendar()[:2])),
            ("month", lambda d: f"{d:%Y-%m}"),
        ):
            cols = _group(days, key)
            if len(cols) <= max_columns or unit == "month":
                return unit, cols
        raise AssertionError("unreachable")

    def cells(self, columns: list[Column]) -> list[list[dict[str, Any]]]:
        """Per row and column: code, bars present/expected and sessions complete/in it."""
        out = []
        for row in self.rows:
            line = []
            for col in columns:
                codes = row.code[col.index]
                line.append(
                    {
                        "code": period_code(codes),
                        "present": int(row.present[col.index].sum()),
                        "expected": int(row.expected[col.index].sum()),
                        "complete": int((codes == COMPLETE).sum()),
                        "sessions": int((codes != NOT_SESSION).sum()),
                    }
                )
            out.append(line)
        return out


def period_code(codes: np.ndarray) -> int:
    """One cell's code for the sessions ``codes`` of a period (see the module docstring)."""
    codes = codes[codes != NOT_SESSION]
    if codes.size == 0:
        return NOT_SESSION
    if bool(np.all(codes == COMPLETE)):
        return COMPLETE
    if bool(np.all(codes == OUTSIDE)):
        return OUTSIDE
    stored = codes[codes != OUTSIDE]
    if bool(np.all((stored == COMPLETE) | (stored == NODATA))):
        return NODATA if bool(np.any(stored == NODATA)) else COMPLETE
    if bool(np.all((stored == MISSING) | (stored == NODATA))):
        return MISSING
    return PARTIAL


def _group(days: list[dt.date], key: Callable[[dt.date], str]) -> list[Column]:
    cols: list[Column] = []
    for i, d in enumerate(days):
        label = key(d)
        if cols and cols[-1].label == label:
            cols[-1].last = d
            cols[-1].index = np.append(cols[-1].index, i)
        else:
            cols.append(Column(label, d, d, np.array([i], dtype=np.int64)))
    return cols


def session_counts(
    ts: np.ndarray,
    calendar: str,
    first: dt.date,
    last: dt.date,
    bar_type: str,
    hours: str = "regular",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session dates, bars present, bars expected) of ``bar_type``'s sessions in
    ``first .. last``, for sorted bar closes ``ts`` (as ``ntrader.quality.gaps`` counts them)."""
    sessions = sessions_between(calendar, first, last)
    step = spec_step(spec_of(bar_type))
    n = len(sessions)
    if step.daily:
        tz = calendar_timezone(calendar)
        present = np.isin(sessions.dates, local_dates(ts - 1, tz)).astype(np.int64)
        return sessions.dates, present, np.ones(n, dtype=np.int64)
    grid_first, counts = bar_grid(sessions, step.interval_ns, hours)
    expected = expand_grid(grid_first, counts, step.interval_ns)
    pos = np.searchsorted(ts, expected)
    found = np.zeros(expected.size, dtype=bool)
    ok = pos < ts.size
    found[ok] = ts[pos[ok]] == expected[ok]
    session_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    present = np.bincount(session_of[found], minlength=n).astype(np.int64)
    return sessions.dates, present, counts.astype(np.int64)


def build(
    bar_types: list[str],
    read_ts: Callable[[str, int | None, int | None], np.ndarray],
    no_data: Callable[[str], Mapping[dt.date, Any]],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    hours: str = "regular",
    stored_bar_types: list[str] | None = None,
) -> Coverage:
    """The matrix of ``bar_types``: ``read_ts(bt, lo_ns, hi_ns)`` gives sorted bar closes,
    ``no_data(bt)`` the trusted "no data" records by session (``ntrader.ibkr.nodata.current``).
    A bar type not among ``stored_bar_types`` (default: all are) is never read: its row is all
    missing over the range (without one: over the stored bar types' range)."""
    stored: list[tuple[str, str, np.ndarray, tuple[dt.date, dt.date] | None]] = []
    have = set(bar_types) if stored_bar_types is None else set(stored_bar_types)
    for bt in bar_types:
        cal = calendar_for_venue(instrument_of(bt).rsplit(".", 1)[1])
        tz = calendar_timezone(cal)
        lo = None if start is None else midnight_ns(start, tz)
        hi = None if end is None else midnight_ns(end + dt.timedelta(days=2), tz)
        ts = (
            np.asarray(read_ts(bt, lo, hi), dtype=np.int64) if bt in have else np.empty(0, np.int64)
        )
        own = None
        if ts.size:
            a, b = local_dates(ts[[0, -1]] - 1, tz).tolist()
            own = (a, b)
        stored.append((bt, cal, ts, own))
    owned = [o for *_, o in stored if o]
    if not stored or ((start is None or end is None) and not owned):
        return Coverage(np.array([], dtype="datetime64[D]"), [], start, end)
    first = start or min(o[0] for o in owned)
    last = end or max(o[1] for o in owned)
    counted = []
    for bt, cal, ts, own in stored:
        dates, present, expected = session_counts(ts, cal, first, last, bt, hours)
        code = np.where(present == 0, MISSING, np.where(present < expected, PARTIAL, COMPLETE))
        code = code.astype(np.int8)
        records = no_data(bt)
        for i, d in enumerate(dates.tolist()):
            rec = records.get(d)
            if rec is not None and rec.whole and present[i] == 0:
                code[i] = NODATA
        if own is not None:  # never stored there: not missing, unless the range was asked
            if start is None:
                code[dates < np.datetime64(own[0], "D")] = OUTSIDE
            if end is None:
                code[dates > np.datetime64(own[1], "D")] = OUTSIDE
        counted.append((bt, dates, present, expected, code))
    all_dates = np.unique(np.concatenate([c[1] for c in counted]))
    rows = []
    for bt, dates, present, expected, code in counted:
        at = np.searchsorted(all_dates, dates)
        full_p = np.zeros(all_dates.size, dtype=np.int64)
        full_e = np.zeros(all_dates.size, dtype=np.int64)
        full_c = np.full(all_dates.size, NOT_SESSION, dtype=np.int8)
        full_p[at], full_e[at], full_c[at] = present, expected, code
        rows.append(Row(bt, full_p, full_e, full_c))
    return Coverage(all_dates, rows, start, end)


def midnight_ns(day: dt.date, tz: str) -> int:
    """Local midnight starting ``day`` in ``tz``, as UTC ns."""
    return int(local_hour_ns(np.array([day], dtype="datetime64[D]"), tz, 0)[0])

"""Gap detection: compare a bar series with its exchange calendar's sessions.

Reports missing sessions (merged into ranges of consecutive sessions) and runs of missing bar closes
inside sessions that have bars. Weekends, holidays, closed hours and the time after an early close
are never gaps because only the calendar's own sessions (``ntrader.sessions``) are expected.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Container
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ntrader.errors import InputError
from ntrader.sessions import (
    bar_grid,
    bar_session_date,
    calendar_timezone,
    check_hours,
    expand_grid,
    local_dates,
    local_hour_ns,
    sessions_between,
)

__all__ = ["GapReport", "IntradayGap", "SessionRange", "find_gaps", "split_ranges"]


@dataclass(frozen=True)
class SessionRange:
    """Consecutive (in session order) missing sessions."""

    first: dt.date
    last: dt.date
    sessions: int

    def __str__(self) -> str:
        if self.first == self.last:
            return f"{self.first} (1 session)"
        return f"{self.first} .. {self.last} ({self.sessions} sessions)"


@dataclass(frozen=True)
class IntradayGap:
    """A run of consecutive missing bar closes inside a session that has bars."""

    session: dt.date
    first_missing_ns: int  # close of the first missing bar
    last_missing_ns: int  # close of the last missing bar
    bars: int
    step_ns: int = 60_000_000_000
    tz: str = "America/New_York"

    def start_local(self) -> pd.Timestamp:
        """Local OPEN time of the first missing bar."""
        return pd.Timestamp(self.first_missing_ns - self.step_ns, tz="UTC").tz_convert(self.tz)

    def end_local(self) -> pd.Timestamp:
        """Local CLOSE time of the last missing bar."""
        return pd.Timestamp(self.last_missing_ns, tz="UTC").tz_convert(self.tz)

    def __str__(self) -> str:
        a, b = self.start_local(), self.end_local()
        return f"{self.session} {a:%H:%M}–{b:%H:%M} {a:%Z} ({self.bars} bars)"


@dataclass(frozen=True)
class GapReport:
    sessions_expected: int
    sessions_present: int
    missing_sessions: list[SessionRange]
    intraday_gaps: list[IntradayGap]
    bars_expected: int
    bars_present: int
    bars_outside: int = 0  # bars in the checked date range that are not expected bars
    start: dt.date | None = None
    end: dt.date | None = None

    @property
    def sessions_missing(self) -> int:
        return self.sessions_expected - self.sessions_present

    @property
    def bars_missing(self) -> int:
        return self.bars_expected - self.bars_present

    @property
    def ok(self) -> bool:
        return not self.missing_sessions and not self.intraday_gaps


def _runs(index: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start positions (into ``index``) and lengths of runs of consecutive ints in one group."""
    if index.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e
    brk = (np.diff(index) != 1) | (np.diff(group) != 0)
    starts = np.flatnonzero(np.concatenate(([True], brk)))
    lengths = np.diff(np.append(starts, index.size))
    return starts, lengths


def _missing_ranges(dates: np.ndarray, present: np.ndarray) -> list[SessionRange]:
    miss = np.flatnonzero(~present)
    starts, lengths = _runs(miss, np.zeros_like(miss))
    return [
        SessionRange(
            first=dates[miss[s]].item(),
            last=dates[miss[s + n - 1]].item(),
            sessions=int(n),
        )
        for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)
    ]


def find_gaps(
    ts_event: np.ndarray,
    *,
    calendar: str,
    step_ns: int,
    daily: bool,
    start: dt.date | None = None,
    end: dt.date | None = None,
    hours: str = "regular",
    min_run: int = 1,
) -> GapReport:
    """Compare bar closes with the calendar's sessions over [start, end].

    ``start``/``end`` default to the session dates of the first and last bar. A session is present
    when at least one of its expected bars is (daily: a bar maps to its date). Intraday gaps are
    runs of >= ``min_run`` missing expected closes inside present sessions. Bars that are not
    expected (other hours, weekends) but fall in the date range are counted in ``bars_outside``.
    """
    check_hours(hours)
    if min_run < 1:
        raise InputError(f"min_run must be >= 1, got {min_run}")
    if not daily and step_ns <= 0:
        raise InputError(f"bar step must be positive, got {step_ns} ns")
    ts = np.asarray(ts_event, dtype=np.int64)
    if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        ts = np.unique(ts)
    tz = calendar_timezone(calendar)
    if start is None or end is None:
        if ts.size == 0:
            raise InputError(
                "no bars and no date range: cannot tell which sessions to check",
                hint="pass start and end",
            )
        start = start if start is not None else bar_session_date(int(ts[0]), tz)
        end = end if end is not None else bar_session_date(int(ts[-1]), tz)
    sessions = sessions_between(calendar, start, end)
    n_sess = len(sessions)

    # Bars whose session date (local date of ts - 1ns) lies in [start, end].
    if end >= start:
        edges = local_hour_ns(
            np.array([np.datetime64(start, "D"), np.datetime64(end, "D") + np.timedelta64(1, "D")]),
            tz,
            0,
        )
        lo, hi = np.searchsorted(ts, edges + 1, side="left")
        ts_in = ts[int(lo) : int(hi)]
    else:
        ts_in = ts[:0]

    if daily:
        bar_dates = local_dates(ts_in - 1, tz)
        present = np.isin(sessions.dates, bar_dates)
        n_present = int(present.sum())
        matched = int(np.isin(bar_dates, sessions.dates).sum())
        return GapReport(
            sessions_expected=n_sess,
            sessions_present=n_present,
            missing_sessions=_missing_ranges(sessions.dates, present),
            intraday_gaps=[],
            bars_expected=n_sess,
            bars_present=n_present,
            bars_outside=int(ts_in.size - matched),
            start=start,
            end=end,
        )

    first, counts = bar_grid(sessions, step_ns, hours)
    expected = expand_grid(first, counts, step_ns)
    pos = np.searchsorted(ts_in, expected)
    found = np.zeros(expected.size, dtype=bool)
    ok = pos < ts_in.size
    found[ok] = ts_in[pos[ok]] == expected[ok]
    session_of = np.repeat(np.arange(n_sess, dtype=np.int64), counts)
    per_session = np.bincount(session_of[found], minlength=n_sess)
    present = per_session > 0
    bars_present = int(found.sum())

    miss = np.flatnonzero(~found & present[session_of])
    starts, lengths = _runs(miss, session_of[miss])
    keep = lengths >= min_run
    starts, lengths = starts[keep], lengths[keep]
    first_i = miss[starts]
    last_i = miss[starts + lengths - 1]
    gaps = [
        IntradayGap(
            session=sessions.dates[session_of[a]].item(),
            first_missing_ns=int(expected[a]),
            last_missing_ns=int(expected[b]),
            bars=int(n),
            step_ns=int(step_ns),
            tz=tz,
        )
        for a, b, n in zip(first_i.tolist(), last_i.tolist(), lengths.tolist(), strict=True)
    ]
    return GapReport(
        sessions_expected=n_sess,
        sessions_present=int(present.sum()),
        missing_sessions=_missing_ranges(sessions.dates, present),
        intraday_gaps=gaps,
        bars_expected=int(expected.size),
        bars_present=bars_present,
        bars_outside=int(ts_in.size - bars_present),
        start=start,
        end=end,
    )


def split_ranges(
    ranges: list[SessionRange], calendar: str, known: Container[dt.date]
) -> tuple[list[SessionRange], list[SessionRange]]:
    """Missing-session ranges cut into (ranges to fetch, ranges whose sessions are all in
    ``known``, e.g. sessions IB had no data for), each still consecutive in the calendar."""
    fetch: list[SessionRange] = []
    skip: list[SessionRange] = []
    for r in ranges:
        days = sessions_between(calendar, r.first, r.last).date_list()
        for is_known, group in itertools.groupby(days, key=lambda d: d in known):
            g = list(group)
            (skip if is_known else fetch).append(SessionRange(g[0], g[-1], len(g)))
    return fetch, skip

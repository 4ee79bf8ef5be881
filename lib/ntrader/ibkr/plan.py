"""Plan the fewest IB historical-data requests that cover exactly the sessions to fetch.

A session is to be fetched when the catalog lacks any of its expected bars in the fetched hours
(:func:`session_fill`): no bar at all, or holes inside it (e.g. 11:00–11:30 missing) — a session
with holes is requested again whole and merged, so the hole is filled. (Which of them IB already
answered "no data" for is the fetcher's business: ``ntrader.ibkr.nodata``.)

The sessions to fetch are grouped into runs of sessions that are consecutive in the exchange
calendar's session order (a Friday and the next Monday are consecutive; so are 2024-07-03 and
2024-07-05 around the July 4 holiday). Each run is cut into chunks of at most ``chunk_sessions``
sessions and each chunk becomes one request ending at the close of its last session, with duration
``"N D"``: IB counts N trading sessions back from the end time, so the request covers exactly the
chunk. Dates that are not sessions (weekends, holidays) are ignored.

The end time is the regular close (early closes included) for ``use_rth=True`` and the extended
close (20:00 local, close + 4 h on early-close days) otherwise; see ``ntrader.sessions``.

Chunk sizes follow IB's step-size table ("Historical Data Limitations": the largest duration each
bar size accepts) with margin; see :func:`default_chunk_sessions`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ntrader.errors import InputError
from ntrader.sessions import Sessions, bar_grid, expand_grid, local_dates, sessions_between

# Nautilus aggregation -> (IB unit singular, plural, supported step counts). IB's legal bar sizes:
# 1/5/10/15/30 secs, 1/2/3/5/10/15/20/30 min(s), 1/2/3/4/8 hour(s), 1 day (1 week and 1 month too,
# but those are not session-sized and ntrader does not store them).
_UNITS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "SECOND": ("secs", "secs", (1, 5, 10, 15, 30)),
    "MINUTE": ("min", "mins", (1, 2, 3, 5, 10, 15, 20, 30)),
    "HOUR": ("hour", "hours", (1, 2, 3, 4, 8)),
    "DAY": ("day", "days", (1,)),
}
WHAT_TO_SHOW: dict[str, str] = {"LAST": "TRADES", "MID": "MIDPOINT", "BID": "BID", "ASK": "ASK"}

# IB barSizeSetting -> sessions per request. IB's step-size table allows "1 D" for 1 min bars
# (multi-day durations up to ~5 D work in practice, 6+ D timed out), "1 W" for 3 mins and up,
# "1 M" for 30 mins and up, "1 Y" for daily bars; the values here stay inside it with margin.
# Seconds bars: one session per request, but IB's table allows only 1800 S (1 secs), 3600 S
# (5 secs), 14400 S (10/15 secs) or 28800 S (30 secs) per request, so a full extended session of
# seconds bars may be refused; IB also serves bars of 30 secs or less only for about the last six
# months.
_CHUNK_SESSIONS: dict[str, int] = {
    **{f"{n} secs": 1 for n in _UNITS["SECOND"][2]},
    "1 min": 1,
    "2 mins": 2,
    "3 mins": 5,
    "5 mins": 5,
    "10 mins": 5,
    "15 mins": 10,
    "20 mins": 10,
    "30 mins": 10,
    "1 hour": 20,
    "2 hours": 20,
    "3 hours": 20,
    "4 hours": 20,
    "8 hours": 20,
    "1 day": 250,
}
IB_BAR_SIZES: tuple[str, ...] = tuple(_CHUNK_SESSIONS)
# IB rejects "N D" durations above 365 days ("must be made in years").
MAX_DURATION_DAYS = 365


def _supported_specs() -> str:
    units = ", ".join(
        "/".join(str(n) for n in counts) + f"-{unit}" for unit, (_, _, counts) in _UNITS.items()
    )
    return f"{units}; each with -LAST, -MID, -BID or -ASK (e.g. 1-MINUTE-LAST)"


def _parse_spec(bar_spec: str) -> tuple[int, str, str]:
    """``1-MINUTE-LAST`` -> (1, "MINUTE", "LAST"); InputError listing the supported specs."""
    text = str(bar_spec).strip().upper()
    if text.endswith("-EXTERNAL") or text.endswith("-INTERNAL"):
        text = text.rsplit("-", 1)[0]
    parts = text.split("-")
    if len(parts) == 3 and parts[0].isdigit():
        n, unit, price = int(parts[0]), parts[1], parts[2]
        if unit in _UNITS and n in _UNITS[unit][2] and price in WHAT_TO_SHOW:
            return n, unit, price
    raise InputError(
        f"bar spec {bar_spec!r} cannot be fetched from IB",
        hint=f"use one of: {_supported_specs()}",
    )


def ib_bar_size(bar_spec: str) -> str:
    """IB barSizeSetting of a Nautilus bar spec: ``5-MINUTE-LAST`` -> ``5 mins``."""
    n, unit, _ = _parse_spec(bar_spec)
    one, many, _ = _UNITS[unit]
    return f"{n} {one if n == 1 else many}"


def what_to_show(bar_spec: str) -> str:
    """IB whatToShow of a bar spec: -LAST -> TRADES, -MID -> MIDPOINT, -BID -> BID, -ASK -> ASK."""
    return WHAT_TO_SHOW[_parse_spec(bar_spec)[2]]


def _check_bar_size(bar_size: str) -> str:
    key = " ".join(str(bar_size).split()).lower()
    if key not in _CHUNK_SESSIONS:
        raise InputError(
            f"unsupported IB bar size {bar_size!r}", hint=f"use one of: {', '.join(IB_BAR_SIZES)}"
        )
    return key


def default_chunk_sessions(bar_size: str) -> int:
    """Sessions per request that IB reliably serves for an IB ``bar_size`` (e.g. ``"1 min"``)."""
    return _CHUNK_SESSIONS[_check_bar_size(bar_size)]


@dataclass(frozen=True)
class PlannedRequest:
    """One IB historical request: ``duration`` back from ``end_utc`` (tz-aware UTC; None: "now",
    an empty endDateTime)."""

    sessions: tuple[dt.date, ...]
    end_utc: dt.datetime | None
    duration: str
    bar_size: str
    use_rth: bool


@dataclass(frozen=True)
class SessionFill:
    """One session of the catalog against the bars expected in the fetched hours."""

    session: dt.date
    expected: int  # expected bar closes (daily bars: 1)
    present: int  # of those, in the catalog
    holes: tuple[tuple[int, int], ...]  # runs of missing closes [first_ns, last_ns] (intraday)

    @property
    def empty(self) -> bool:
        return self.present == 0

    @property
    def complete(self) -> bool:
        return self.present >= self.expected


def session_fill(
    ts_event: np.ndarray, sessions: Sessions, step_ns: int, *, daily: bool, hours: str
) -> list[SessionFill]:
    """Per session: expected and present bars, and the runs of missing bar closes (the grid of
    ``ntrader.sessions``: closes every ``step_ns`` inside the ``hours`` window)."""
    ts = np.unique(np.asarray(ts_event, dtype=np.int64))
    n = len(sessions)
    if daily:
        have = np.isin(sessions.dates, local_dates(ts - 1, sessions.tz)) if ts.size else None
        return [
            SessionFill(sessions.dates[i].item(), 1, int(have is not None and bool(have[i])), ())
            for i in range(n)
        ]
    first, counts = bar_grid(sessions, step_ns, hours)
    expected = expand_grid(first, counts, step_ns)
    found = np.zeros(expected.size, dtype=bool)
    if ts.size:
        pos = np.searchsorted(ts, expected)
        ok = pos < ts.size
        found[ok] = ts[pos[ok]] == expected[ok]
    session_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    present = np.bincount(session_of[found], minlength=n)
    miss = np.flatnonzero(~found)
    holes: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    if miss.size:
        brk = (np.diff(miss) != 1) | (np.diff(session_of[miss]) != 0)
        starts = np.flatnonzero(np.concatenate(([True], brk)))
        ends = np.append(starts[1:], miss.size) - 1
        for a, b in zip(miss[starts].tolist(), miss[ends].tolist(), strict=True):
            holes[int(session_of[a])].append((int(expected[a]), int(expected[b])))
    return [
        SessionFill(sessions.dates[i].item(), int(counts[i]), int(present[i]), tuple(holes[i]))
        for i in range(n)
    ]


def _session_runs(
    missing: Iterable[dt.date], calendar: str
) -> tuple[Sessions | None, list[np.ndarray]]:
    """The sessions of ``missing`` as runs of consecutive session indices into the Sessions."""
    days = sorted({d.date() if isinstance(d, dt.datetime) else d for d in missing})
    if not days:
        return None, []
    sessions = sessions_between(calendar, days[0], days[-1])
    wanted = np.asarray(days, dtype="datetime64[D]")
    idx = np.searchsorted(sessions.dates, wanted)
    found = idx < len(sessions)
    idx = idx[found]
    idx = idx[sessions.dates[idx] == wanted[found]]
    if idx.size == 0:
        return sessions, []
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    return sessions, list(np.split(idx, breaks))


def _check_chunk(chunk_sessions: int) -> int:
    if not 1 <= chunk_sessions <= MAX_DURATION_DAYS:
        raise InputError(
            f"chunk_sessions must be 1..{MAX_DURATION_DAYS}, got {chunk_sessions}",
            hint="IB takes at most 365 D per request",
        )
    return int(chunk_sessions)


def plan(
    missing: Iterable[dt.date],
    *,
    calendar: str = "XNYS",
    bar_size: str = "1 min",
    use_rth: bool = True,
    chunk_sessions: int | None = None,
) -> list[PlannedRequest]:
    """The fewest requests covering every missing session exactly once, in calendar order."""
    size = _check_bar_size(bar_size)
    chunk = _check_chunk(chunk_sessions if chunk_sessions is not None else _CHUNK_SESSIONS[size])
    sessions, runs = _session_runs(missing, calendar)
    if sessions is None:
        return []
    end_ns = sessions.close_ns if use_rth else sessions.ext_close_ns
    out: list[PlannedRequest] = []
    for run in runs:
        for lo in range(0, len(run), chunk):
            part = run[lo : lo + chunk]
            last = int(part[-1])
            out.append(
                PlannedRequest(
                    sessions=tuple(sessions.dates[i].item() for i in part),
                    end_utc=pd.Timestamp(int(end_ns[last]), tz="UTC").to_pydatetime(),
                    duration=f"{len(part)} D",
                    bar_size=size,
                    use_rth=use_rth,
                )
            )
    return out


def optimal_request_count(
    missing: Iterable[dt.date], *, calendar: str = "XNYS", chunk_sessions: int
) -> int:
    """Lower bound on requests: sum over runs of consecutive sessions of ceil(len / chunk)."""
    chunk = _check_chunk(chunk_sessions)
    _, runs = _session_runs(missing, calendar)
    return sum(math.ceil(len(run) / chunk) for run in runs)

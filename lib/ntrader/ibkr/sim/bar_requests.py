"""Historical requests of the TWS simulator: the parameters TWS accepts and the bars they select.

Parses barSizeSetting, durationStr and endDateTime the way TWS does (rejecting what it rejects,
with IB's error codes via :class:`RequestInvalid`), selects the bars of a request from the market
model of :mod:`ntrader.ibkr.sim.market` and formats bar times as TWS sends them.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import numpy as np
import pandas as pd

from ntrader.ibkr.sim.market import (
    DAILY,
    DAY_NS,
    IB_TZ,
    NS,
    TZ,
    BarSet,
    SymbolInfo,
    count_bars,
    data_sessions,
    local_date,
    session_bars,
    windows,
)
from ntrader.sessions import Sessions

MAX_BARS = 2_000_000  # larger requests get 162 "Time length exceed max"
HMDS = "Historical Market Data Service error message:"


class RequestInvalid(Exception):
    """A historical request the simulator rejects, with its IB error code.

    Invalid bar sizes/durations get 162 (real TWS often says 321, which ib_async treats as a
    warning and so leaves the request hanging until its timeout)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------------------------------
# Request parameters

_BAR_UNITS = {"sec": 0, "secs": 0, "min": 1, "mins": 1, "hour": 60, "hours": 60}


def parse_bar_size(text: str) -> int:
    """barSizeSetting -> minutes per bar (DAILY for '1 day'); RequestInvalid if unsupported."""
    parts = text.strip().lower().split()
    if len(parts) == 2 and parts[0].isdigit():
        n, unit = int(parts[0]), parts[1]
        if unit in ("day", "days") and n == 1:
            return DAILY
        mult = _BAR_UNITS.get(unit)
        if mult and n > 0 and (n * mult) <= 480 and (n * mult) in _ALLOWED_MINUTES:
            return n * mult
    raise RequestInvalid(
        162,
        f"{HMDS}Historical data bar size setting {text!r} is invalid "
        "(served: 1/2/3/5/10/15/20/30 mins, 1/2/3/4/8 hours, 1 day).",
    )


_ALLOWED_MINUTES = {1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 180, 240, 480}


def parse_duration(text: str) -> tuple[int, str]:
    """durationStr 'N S|D|W|M|Y' -> (N, unit); RequestInvalid otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s+([SDWMY])\s*", text.upper())
    if not m or int(m.group(1)) <= 0:
        raise RequestInvalid(
            162,
            f"{HMDS}Historical data request duration {text!r} is invalid: use an integer, a "
            "space and S, D, W, M or Y.",
        )
    return int(m.group(1)), m.group(2)


_END_INVALID = (
    "End Date/Time: The date, time, or time-zone entered is invalid. The correct format is "
    "yyyymmdd hh:mm:ss xx/xxxx where yyyymmdd and xx/xxxx are optional. E.g.: 20031126 15:59:00 "
    "US/Eastern. You can also provide yyyymmdd-hh:mm:ss time is in UTC."
)


def parse_end(text: str, now_ns: int) -> int:
    """endDateTime -> UTC ns. '' = now; 'yyyymmdd hh:mm:ss TZ' (ib_async sends 'UTC');
    'yyyymmdd-hh:mm:ss' = UTC; no zone = New York (the simulated TWS login zone);
    'yyyymmdd' = 23:59:59 New York of that day."""
    s = text.strip()
    if not s:
        return now_ns
    try:
        m = re.fullmatch(r"(\d{8})(?:([ -])(\d{1,2}:\d{2}:\d{2})(?:\s+(\S+))?)?", s)
        if not m:
            raise ValueError(s)
        day, sep, clock, zone = m.groups()
        naive = dt.datetime.strptime(f"{day} {clock or '23:59:59'}", "%Y%m%d %H:%M:%S")
        if sep == "-":
            tz: dt.tzinfo = dt.UTC
        else:
            tz = zoneinfo.ZoneInfo(zone or TZ)
        return int(pd.Timestamp(naive.replace(tzinfo=tz)).value)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError, OverflowError):
        raise RequestInvalid(10314, _END_INVALID) from None


def _span_start(end_ns: int, n: int, unit: str) -> int:
    end = pd.Timestamp(end_ns, tz="UTC")
    if unit == "S":
        return end_ns - n * NS
    if unit == "W":
        return end_ns - n * 7 * DAY_NS
    if unit == "M":
        return int((end - pd.DateOffset(months=n)).value)
    return int((end - pd.DateOffset(years=n)).value)  # Y


def select_bars(
    info: SymbolInfo,
    end_ns: int,
    duration: tuple[int, str],
    bar_minutes: int,
    use_rth: bool,
    no_data: frozenset[dt.date] = frozenset(),
) -> BarSet:
    """The bars a historical request returns.

    ``N D``: the last N sessions whose window opens before ``end_ns``, their bars opening before
    ``end_ns``. ``N S/W/M/Y``: bars opening in ``[end - span, end)`` (W = 7 days, M/Y calendar
    months/years). Sessions in ``no_data`` keep their place but have no bars; ``sessions`` of the
    result lists the sessions the request covered.
    """
    n, unit = duration
    end_date = local_date(end_ns)
    if unit == "D":
        lookback = dt.timedelta(days=n * 7 // 5 + 12)
        s = data_sessions(end_date - lookback, end_date, info.head)
        win_open, _ = windows(s, use_rth)
        keep = np.flatnonzero(win_open < end_ns)[-n:]
        s = _subset(s, keep)
        start_ns = None
    else:
        start_ns = _span_start(end_ns, n, unit)
        s = data_sessions(local_date(start_ns) - dt.timedelta(days=1), end_date, info.head)
        win_open, win_close = windows(s, use_rth)
        keep = np.flatnonzero((win_open < end_ns) & (win_close > start_ns))
        s = _subset(s, keep)
    if count_bars(s, bar_minutes, use_rth) > MAX_BARS:
        raise RequestInvalid(162, f"{HMDS}Time length exceed max.")
    bars = session_bars(info.symbol, s, bar_minutes, use_rth)
    mask = bars.ts_open_ns < end_ns
    if start_ns is not None:
        mask &= bars.ts_open_ns >= start_ns
    window_mask = mask.copy()
    if no_data:
        blocked = np.array(sorted(no_data), dtype="datetime64[D]")
        mask &= ~np.isin(bars.session_date, blocked)
    out = bars.take(mask)
    out.sessions = sorted({d.item() for d in bars.session_date[window_mask]})
    return out


def _subset(s: Sessions, idx: np.ndarray) -> Sessions:
    return Sessions(
        calendar=s.calendar,
        tz=s.tz,
        dates=s.dates[idx],
        open_ns=s.open_ns[idx],
        close_ns=s.close_ns[idx],
        ext_open_ns=s.ext_open_ns[idx],
        ext_close_ns=s.ext_close_ns[idx],
        midnight_ns=s.midnight_ns[idx],
    )


# --------------------------------------------------------------------------------------------------
# Answers


def format_bar_time(ts_open_ns: int, format_date: int) -> str:
    """Intraday bar time: epoch seconds (formatDate=2) or 'yyyymmdd hh:mm:ss US/Eastern'."""
    if format_date == 2:
        return str(int(ts_open_ns) // NS)
    local = pd.Timestamp(int(ts_open_ns), tz="UTC").tz_convert(TZ)
    return local.strftime("%Y%m%d %H:%M:%S") + f" {IB_TZ}"

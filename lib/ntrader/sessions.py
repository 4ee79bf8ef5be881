"""Exchange-calendar sessions and the bar closes expected in them.

Bars are identified by ``ts_event`` = the bar CLOSE in UTC nanoseconds (int64):

* intraday: a 1-minute bar covering 09:30–09:31 New York has ``ts_event`` 09:31 New York;
* daily: the bar of session D has ``ts_event`` = local midnight at the start of D+1, so the
  session of any bar is the local date of ``ts_event - 1 ns``.

Expected intraday bar closes lie on a grid of ``step_ns`` anchored at local midnight. A close
``g`` is expected in a session when its bar interval ``(g - step, g]`` overlaps the session window
``(open, close]``; for steps dividing the session (1, 5, 15, 30 minutes) that is exactly every
``open + k*step`` in ``(open, close]``; hourly bars close at 10:00, 11:00, …, 16:00.

Calendar objects are cached per calendar name and built only over the whole years needed; a request
outside the cached range rebuilds the calendar over the union. Gap detection against these
sessions lives in ``ntrader.quality.gaps``.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ntrader.errors import InputError

if TYPE_CHECKING:  # pandas is imported where a calendar or date parsing needs it: an import of
    import pandas as pd  # CSV bars (pyarrow time zones) never does (tests/test_startup.py)

Hours = Literal["regular", "extended"]
HOURS: tuple[str, ...] = ("regular", "extended")

NS_PER_HOUR = 3_600_000_000_000
NS_PER_DAY = 24 * NS_PER_HOUR

# Extended hours of US equities: pre-market from 04:00, post-market until 20:00 local; on
# early-close days post-market ends 4 hours after the close (13:00 -> 17:00).
EXT_OPEN_HOUR = 4
EXT_CLOSE_HOUR = 20
POST_MARKET_NS = 4 * NS_PER_HOUR

# Venue (IBKR / Nautilus spelling, upper case) -> exchange_calendars name. US equities on every
# lit venue and the SMART router share the NYSE holiday and early-close calendar. In
# exchange_calendars 4.x "XNAS", "NASDAQ", "ARCX", "XASE", "BATS" are aliases of "XNYS", so XNYS is
# the one canonical calendar (and one cached object) for all of them.
_US_EQUITIES = "XNYS"
VENUE_CALENDARS: dict[str, str] = {
    venue: _US_EQUITIES
    for venue in (
        "NASDAQ",
        "XNAS",
        "ISLAND",
        "NYSE",
        "XNYS",
        "ARCA",
        "NYSEARCA",
        "ARCX",
        "AMEX",
        "NYSEAMERICAN",
        "NYSEMKT",
        "XASE",
        "BATS",
        "BYX",
        "BZX",
        "EDGEA",
        "EDGX",
        "IEX",
        "IEXG",
        "SMART",
        "PSX",
        "BEX",
        "CHX",
        "LTSE",
        "MEMX",
        "PEARL",
    )
}


def calendar_for_venue(venue: str) -> str:
    """The exchange_calendars name for a venue (case-insensitive); InputError if unknown."""
    key = venue.strip().upper()
    try:
        return VENUE_CALENDARS[key]
    except KeyError:
        known = ", ".join(sorted(VENUE_CALENDARS))
        raise InputError(
            f"unknown venue {venue!r}: no trading calendar is known for it",
            hint=f"use one of: {known}",
        ) from None


# --------------------------------------------------------------------------------------------------
# Calendar cache


@dataclass(frozen=True)
class _Schedule:
    """One built calendar, as numpy columns over all its sessions."""

    name: str
    tz: str
    first: dt.date
    last: dt.date
    dates: np.ndarray  # datetime64[D]
    open_ns: np.ndarray  # int64
    close_ns: np.ndarray  # int64


_CACHE: dict[str, _Schedule] = {}
_LOCK = threading.Lock()


@functools.cache
def _resolve_calendar_name(calendar: str) -> str:
    """Canonical exchange_calendars name for a calendar name, alias or venue."""
    import exchange_calendars as xc

    dispatcher = xc.calendar_utils.global_calendar_dispatcher
    for candidate in (calendar, calendar.strip().upper()):
        try:
            return str(dispatcher.resolve_alias(candidate))
        except Exception:
            continue
    venue = calendar.strip().upper()
    if venue in VENUE_CALENDARS:
        return VENUE_CALENDARS[venue]
    raise InputError(
        f"unknown trading calendar {calendar!r}",
        hint="use an exchange_calendars name such as XNYS, or a venue: "
        + ", ".join(sorted(VENUE_CALENDARS)),
    )


def _schedule(calendar: str, start: dt.date, end: dt.date) -> _Schedule:
    """A cached schedule covering at least [start, end], built over whole calendar years."""
    name = _resolve_calendar_name(calendar)
    with _LOCK:
        cached = _CACHE.get(name)
        if cached is not None and cached.first <= start and end <= cached.last:
            return cached
        first = dt.date(start.year, 1, 1)
        last = dt.date(end.year, 12, 31)
        if cached is not None:
            first, last = min(first, cached.first), max(last, cached.last)
        built = _build_schedule(name, first, last)
        _CACHE[name] = built
        return built


def _build_schedule(name: str, first: dt.date, last: dt.date) -> _Schedule:
    import exchange_calendars as xc
    import pandas as pd

    try:
        cal = xc.get_calendar(name, start=pd.Timestamp(first), end=pd.Timestamp(last))
    except Exception as exc:  # out-of-bounds dates and the like
        raise InputError(
            f"cannot build trading calendar {name} for {first} .. {last}: {exc}",
            hint="check the date range",
        ) from exc
    sched = cal.schedule
    return _Schedule(
        name=name,
        tz=str(cal.tz),
        first=first,
        last=last,
        dates=np.asarray(sched.index.values, dtype="datetime64[D]"),
        open_ns=_utc_ns(sched["open"]),
        close_ns=_utc_ns(sched["close"]),
    )


def _utc_ns(col: pd.Series) -> np.ndarray:
    import pandas as pd

    idx = pd.DatetimeIndex(col)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return np.asarray(idx.values.astype("datetime64[ns]").view(np.int64), dtype=np.int64)


def clear_calendar_cache() -> None:
    """Forget every cached calendar (for tests and benchmarks)."""
    with _LOCK:
        _CACHE.clear()


def calendar_timezone(calendar: str) -> str:
    """The IANA time zone of a calendar (without building it)."""
    import exchange_calendars as xc

    name = _resolve_calendar_name(calendar)
    cached = _CACHE.get(name)
    if cached is not None:
        return cached.tz
    factory = xc.calendar_utils.global_calendar_dispatcher._calendar_factories.get(name)
    tz = getattr(factory, "tz", None)
    if tz is None:
        return _schedule(name, dt.date.today(), dt.date.today()).tz
    return str(tz)


# --------------------------------------------------------------------------------------------------
# Sessions


def local_hour_ns(dates: np.ndarray, tz: str, hour: int) -> np.ndarray:
    """UTC ns of local ``hour``:00 on each date (datetime64[D]) in ``tz``."""
    import pandas as pd

    if dates.size == 0:
        return np.empty(0, dtype=np.int64)
    naive = pd.DatetimeIndex(dates.astype("datetime64[ns]") + np.timedelta64(hour, "h"))
    local = naive.tz_localize(
        tz, ambiguous=np.ones(dates.size, dtype=bool), nonexistent="shift_forward"
    )
    return np.asarray(local.tz_convert("UTC").tz_localize(None).values.view(np.int64))


@dataclass(frozen=True)
class Sessions:
    """Trading sessions of a calendar, as numpy columns (one row per session, in order).

    ``open_ns``/``close_ns`` are the regular session (early closes included); ``ext_open_ns``/
    ``ext_close_ns`` the extended window (04:00 local .. 20:00, or close + 4 h on early closes);
    ``midnight_ns`` is local midnight at the start of each session date (the bar-grid anchor).
    """

    calendar: str
    tz: str
    dates: np.ndarray  # datetime64[D]
    open_ns: np.ndarray  # int64 UTC ns
    close_ns: np.ndarray  # int64 UTC ns
    ext_open_ns: np.ndarray = field(repr=False)
    ext_close_ns: np.ndarray = field(repr=False)
    midnight_ns: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return int(self.dates.shape[0])

    def window(self, hours: str = "regular") -> tuple[np.ndarray, np.ndarray]:
        """(open_ns, close_ns) of each session for ``hours`` = "regular" or "extended"."""
        check_hours(hours)
        if hours == "extended":
            return self.ext_open_ns, self.ext_close_ns
        return self.open_ns, self.close_ns

    def date_list(self) -> list[dt.date]:
        return [d.item() for d in self.dates]


def check_hours(hours: str) -> None:
    """InputError unless ``hours`` is "regular" or "extended"."""
    if hours not in HOURS:
        raise InputError(f"unknown hours {hours!r}", hint="use 'regular' or 'extended'")


def sessions_between(calendar: str, start: dt.date, end: dt.date) -> Sessions:
    """Every session of ``calendar`` with ``start <= date <= end`` (empty if start > end)."""
    if end < start:
        sched = _schedule(calendar, start, start)
        lo = hi = 0
    else:
        sched = _schedule(calendar, start, end)
        lo = int(np.searchsorted(sched.dates, np.datetime64(start, "D"), side="left"))
        hi = int(np.searchsorted(sched.dates, np.datetime64(end, "D"), side="right"))
    dates = sched.dates[lo:hi]
    open_ns = sched.open_ns[lo:hi]
    close_ns = sched.close_ns[lo:hi]
    ext_open = local_hour_ns(dates, sched.tz, EXT_OPEN_HOUR)
    ext_close = np.minimum(
        local_hour_ns(dates, sched.tz, EXT_CLOSE_HOUR), close_ns + POST_MARKET_NS
    )
    # Never narrower than the regular session (exotic calendars with very long sessions).
    ext_open = np.minimum(ext_open, open_ns)
    ext_close = np.maximum(ext_close, close_ns)
    return Sessions(
        calendar=sched.name,
        tz=sched.tz,
        dates=dates,
        open_ns=open_ns,
        close_ns=close_ns,
        ext_open_ns=ext_open,
        ext_close_ns=ext_close,
        midnight_ns=local_hour_ns(dates, sched.tz, 0),
    )


def bar_grid(sessions: Sessions, step_ns: int, hours: str) -> tuple[np.ndarray, np.ndarray]:
    """(first grid close ns, number of closes) per session; see :func:`expand_grid`."""
    if step_ns <= 0:
        raise InputError(f"bar step must be positive, got {step_ns} ns")
    open_ns, close_ns = sessions.window(hours)
    anchor = sessions.midnight_ns
    # Closes g = anchor + k*step with g > open and g - step < close.
    k_first = (open_ns - anchor) // step_ns + 1
    k_last = (close_ns - anchor + step_ns - 1) // step_ns
    counts = np.maximum(k_last - k_first + 1, 0).astype(np.int64)
    return anchor + k_first * step_ns, counts


def expected_bar_closes(sessions: Sessions, step_ns: int, hours: str = "regular") -> np.ndarray:
    """Sorted int64 UTC ns of every expected intraday bar close over ``sessions``."""
    first, counts = bar_grid(sessions, step_ns, hours)
    return expand_grid(first, counts, step_ns)


def expand_grid(first: np.ndarray, counts: np.ndarray, step_ns: int) -> np.ndarray:
    """Every close of a :func:`bar_grid`: ``first[i] + k*step_ns`` for ``k < counts[i]``."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    run_start = np.cumsum(counts) - counts  # index of each session's first close
    offsets = np.arange(total, dtype=np.int64) - np.repeat(run_start, counts)
    return np.repeat(first, counts) + offsets * np.int64(step_ns)


# --------------------------------------------------------------------------------------------------
# Session dates of bars


def local_dates(ts_ns: np.ndarray, tz: str) -> np.ndarray:
    """datetime64[D] local date of each UTC ns timestamp in ``tz``."""
    import pandas as pd

    ts = np.asarray(ts_ns, dtype=np.int64)
    if ts.size == 0:
        return np.empty(0, dtype="datetime64[D]")
    local = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    return np.asarray(local.tz_localize(None).values.astype("datetime64[D]"))


def bar_session_date(ts_event_ns: int, tz: str = "America/New_York") -> dt.date:
    """The session date of one bar: the local date of ``ts_event - 1 ns``."""
    import pandas as pd

    return pd.Timestamp(int(ts_event_ns) - 1, tz="UTC").tz_convert(tz).date()


def parse_day(value: str | dt.date | None, what: str) -> dt.date | None:
    """A START/END value (``YYYY-MM-DD`` or a date) as a date; ``None`` when empty."""
    import pandas as pd

    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return pd.Timestamp(str(value)).date()
    except (ValueError, TypeError) as exc:
        raise InputError(f"{what}={value!r} is not a date", hint="use YYYY-MM-DD") from exc


def day_bounds_ns(
    start: dt.date | None, end: dt.date | None, tz: str
) -> tuple[int | None, int | None]:
    """Sessions ``start .. end`` (inclusive, either open) -> inclusive ``ts_event`` bounds.

    A session's bars close after its local midnight and no later than the next one (a daily bar
    closes exactly at the next midnight), so this is ``(midnight(start), midnight(end + 1)]``."""
    import pandas as pd

    lo = None if start is None else pd.Timestamp(start, tz=tz).value + 1
    hi = None if end is None else (pd.Timestamp(end, tz=tz) + pd.Timedelta(days=1)).value
    return lo, hi


def last_completed_session(calendar: str = "XNYS", now: dt.datetime | None = None) -> dt.date:
    """The most recent session whose regular close is at or before ``now`` (default: now)."""
    import pandas as pd

    now_ts = pd.Timestamp(now if now is not None else dt.datetime.now(dt.UTC))
    if now_ts.tzinfo is None:
        now_ts = now_ts.tz_localize("UTC")
    today = now_ts.tz_convert(calendar_timezone(calendar)).date()
    s = sessions_between(calendar, today - dt.timedelta(days=14), today)
    done = s.close_ns <= now_ts.value
    if not done.any():
        raise InputError(f"no completed {calendar} session in the 14 days before {today}")
    return s.date_list()[int(np.flatnonzero(done)[-1])]


# --------------------------------------------------------------------------------------------------
# Local wall-clock <-> UTC nanoseconds


def _arrow_ns(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(arr, pa.int64()).to_numpy(), dtype=np.int64)


def localize(
    local_ns: np.ndarray, tz: str, ambiguous: str = "raise", nonexistent: str = "raise"
) -> np.ndarray:
    """UTC ns of local wall-clock ns in ``tz`` (pyarrow.ArrowInvalid on DST problems if raise)."""
    if tz in ("UTC", "Etc/UTC", "utc"):
        return local_ns
    arr = pa.array(local_ns, type=pa.timestamp("ns"))
    return _arrow_ns(pc.assume_timezone(arr, tz, ambiguous=ambiguous, nonexistent=nonexistent))


def local_of(utc_ns: np.ndarray, tz: str) -> np.ndarray:
    """Local wall-clock ns in ``tz`` of UTC ns."""
    if tz in ("UTC", "Etc/UTC", "utc"):
        return utc_ns
    return _arrow_ns(pc.local_timestamp(pa.array(utc_ns, type=pa.timestamp("ns", tz))))

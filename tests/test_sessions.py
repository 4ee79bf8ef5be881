"""Sessions and expected bar closes, checked against exchange_calendars itself.

The ground-truth helpers here are shared with ``test_gaps``."""

from __future__ import annotations

import datetime as dt
import functools

import exchange_calendars as xc
import numpy as np
import pandas as pd
import pytest

from ntrader.errors import InputError
from ntrader.sessions import calendar_for_venue, expected_bar_closes, sessions_between

NY = "America/New_York"
MIN = 60_000_000_000
HOUR = 60 * MIN
D = dt.date


def ny(day: str, hhmm: str) -> int:
    """UTC ns of a New York wall-clock time."""
    return int(pd.Timestamp(f"{day} {hhmm}", tz=NY).value)


def utc(day: str, hhmm: str) -> int:
    return int(pd.Timestamp(f"{day} {hhmm}", tz="UTC").value)


@functools.cache
def _truth_calendar() -> xc.ExchangeCalendar:
    # side="right": minutes are labelled by their close, i.e. every close in (open, close].
    return xc.get_calendar("XNYS", start="2019-01-01", end="2025-12-31", side="right")


def truth_closes(first: str, last: str) -> np.ndarray:
    """Ground truth 1-minute RTH bar closes (UTC ns) of the sessions first..last."""
    cal = _truth_calendar()
    minutes = cal.sessions_minutes(pd.Timestamp(first), pd.Timestamp(last))
    return np.asarray(minutes.asi8, dtype=np.int64)


def truth_sessions(first: str, last: str) -> list[dt.date]:
    return [d.date() for d in _truth_calendar().sessions_in_range(first, last)]


# --------------------------------------------------------------------------------------------------
# venues and sessions


@pytest.mark.parametrize(
    "venue", ["NASDAQ", "nasdaq", "NYSE", "ARCA", "AMEX", "BATS", "IEX", "SMART", " xnas "]
)
def test_us_venues_use_the_nyse_calendar(venue: str) -> None:
    assert calendar_for_venue(venue) == "XNYS"


def test_unknown_venue_lists_known_venues() -> None:
    with pytest.raises(InputError) as err:
        calendar_for_venue("MOON")
    assert "MOON" in err.value.message
    assert err.value.hint is not None
    assert "NASDAQ" in err.value.hint and "SMART" in err.value.hint


def test_unknown_calendar_is_an_input_error() -> None:
    with pytest.raises(InputError):
        sessions_between("NOPE", D(2024, 1, 2), D(2024, 1, 3))


def test_venue_names_are_accepted_as_calendars() -> None:
    a = sessions_between("SMART", D(2024, 7, 1), D(2024, 7, 8))
    b = sessions_between("XNYS", D(2024, 7, 1), D(2024, 7, 8))
    assert a.calendar == b.calendar == "XNYS"
    assert np.array_equal(a.dates, b.dates)


def test_holidays_are_not_sessions() -> None:
    s = sessions_between("XNYS", D(2024, 7, 1), D(2024, 7, 8))
    assert s.date_list() == [
        D(2024, 7, 1),
        D(2024, 7, 2),
        D(2024, 7, 3),
        D(2024, 7, 5),
        D(2024, 7, 8),
    ]
    s = sessions_between("XNYS", D(2024, 1, 12), D(2024, 1, 16))
    assert s.date_list() == [D(2024, 1, 12), D(2024, 1, 16)]  # 2024-01-15 MLK day, weekend


def test_sessions_match_exchange_calendars_for_a_year() -> None:
    s = sessions_between("XNYS", D(2024, 1, 1), D(2024, 12, 31))
    assert s.date_list() == truth_sessions("2024-01-01", "2024-12-31")
    assert len(s) == 252
    assert s.dates.dtype == np.dtype("datetime64[D]")
    assert s.open_ns.dtype == np.int64 and s.close_ns.dtype == np.int64


def test_early_close_and_extended_window() -> None:
    s = sessions_between("XNYS", D(2024, 11, 27), D(2024, 12, 2))
    assert s.date_list() == [D(2024, 11, 27), D(2024, 11, 29), D(2024, 12, 2)]
    assert s.open_ns.tolist() == [
        ny(d, "09:30") for d in ("2024-11-27", "2024-11-29", "2024-12-02")
    ]
    assert s.close_ns.tolist() == [
        ny("2024-11-27", "16:00"),
        ny("2024-11-29", "13:00"),  # day after Thanksgiving
        ny("2024-12-02", "16:00"),
    ]
    assert s.close_ns[1] == utc("2024-11-29", "18:00")
    ext_open, ext_close = s.window("extended")
    assert ext_open.tolist() == [ny(d, "04:00") for d in ("2024-11-27", "2024-11-29", "2024-12-02")]
    assert ext_close.tolist() == [
        ny("2024-11-27", "20:00"),
        ny("2024-11-29", "17:00"),
        ny("2024-12-02", "20:00"),
    ]


def test_dst_switches() -> None:
    s = sessions_between("XNYS", D(2024, 3, 8), D(2024, 3, 11))
    assert s.open_ns.tolist() == [utc("2024-03-08", "14:30"), utc("2024-03-11", "13:30")]
    assert s.close_ns.tolist() == [utc("2024-03-08", "21:00"), utc("2024-03-11", "20:00")]
    s = sessions_between("XNYS", D(2024, 11, 1), D(2024, 11, 4))
    assert s.open_ns.tolist() == [utc("2024-11-01", "13:30"), utc("2024-11-04", "14:30")]
    assert s.window("extended")[0].tolist() == [
        utc("2024-11-01", "08:00"),
        utc("2024-11-04", "09:00"),
    ]


def test_sessions_across_the_cached_range_grow_the_cache() -> None:
    s = sessions_between("XNYS", D(2023, 12, 28), D(2024, 1, 3))
    assert s.date_list() == [D(2023, 12, 28), D(2023, 12, 29), D(2024, 1, 2), D(2024, 1, 3)]
    s = sessions_between("XNYS", D(2019, 12, 31), D(2020, 1, 2))
    assert s.date_list() == [D(2019, 12, 31), D(2020, 1, 2)]


def test_empty_range() -> None:
    s = sessions_between("XNYS", D(2024, 7, 6), D(2024, 7, 7))  # a weekend
    assert len(s) == 0
    assert expected_bar_closes(s, MIN).size == 0
    assert len(sessions_between("XNYS", D(2024, 7, 8), D(2024, 7, 1))) == 0


# --------------------------------------------------------------------------------------------------
# expected bar closes


def test_expected_closes_equal_the_calendar_minutes_for_a_year() -> None:
    s = sessions_between("XNYS", D(2024, 1, 1), D(2024, 12, 31))
    got = expected_bar_closes(s, MIN)
    want = truth_closes("2024-01-02", "2024-12-31")
    assert got.dtype == np.int64
    assert got.size == want.size == 97_740  # 249 * 390 + 3 early closes * 210
    assert np.array_equal(got, want)


def test_expected_closes_on_dst_days() -> None:
    s = sessions_between("XNYS", D(2024, 3, 11), D(2024, 3, 11))
    got = expected_bar_closes(s, MIN)
    assert got[0] == utc("2024-03-11", "13:31") and got[-1] == utc("2024-03-11", "20:00")
    s = sessions_between("XNYS", D(2024, 11, 4), D(2024, 11, 4))
    got = expected_bar_closes(s, MIN)
    assert got[0] == utc("2024-11-04", "14:31") and got[-1] == utc("2024-11-04", "21:00")


def test_expected_closes_five_minutes_hourly_and_extended() -> None:
    s = sessions_between("XNYS", D(2024, 11, 29), D(2024, 12, 2))
    five = expected_bar_closes(s, 5 * MIN)
    assert five.size == 42 + 78
    assert five[0] == ny("2024-11-29", "09:35") and five[41] == ny("2024-11-29", "13:00")
    hourly = expected_bar_closes(s, HOUR)
    want = [ny("2024-11-29", f"{h}:00") for h in range(10, 14)]
    want += [ny("2024-12-02", f"{h}:00") for h in range(10, 17)]
    assert hourly.tolist() == want
    ext = expected_bar_closes(s, MIN, hours="extended")
    assert ext.size == 780 + 960  # 04:01..17:00, 04:01..20:00
    assert ext[0] == ny("2024-11-29", "04:01") and ext[779] == ny("2024-11-29", "17:00")
    assert ext[780] == ny("2024-12-02", "04:01") and ext[-1] == ny("2024-12-02", "20:00")


def test_last_completed_session_respects_closes_weekends_and_holidays():
    from ntrader.sessions import last_completed_session

    def at(text: str) -> dt.datetime:
        return pd.Timestamp(text, tz="America/New_York").to_pydatetime()

    assert last_completed_session("XNYS", at("2024-07-03 12:00")) == dt.date(2024, 7, 2)
    assert last_completed_session("XNYS", at("2024-07-03 13:00")) == dt.date(2024, 7, 3)  # early
    assert last_completed_session("XNYS", at("2024-07-05 09:00")) == dt.date(2024, 7, 3)  # 4th
    assert last_completed_session("XNYS", at("2024-06-03 08:00")) == dt.date(2024, 5, 31)  # Mon
    assert last_completed_session("XNYS", at("2024-05-31 16:00")) == dt.date(2024, 5, 31)


def test_last_session_dates_group_resolves_in_the_fetch_config():
    import subprocess
    import sys

    from .conftest import REPO

    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "fetch.py"), "--cfg", "job", "--resolve"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    from ntrader.sessions import last_completed_session

    assert f"start: '{last_completed_session('XNYS')}'" in out.stdout

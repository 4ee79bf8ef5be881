"""Gap detection (``ntrader.quality.gaps``) checked against bar closes from exchange_calendars."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntrader.errors import InputError
from ntrader.quality.gaps import GapReport, IntradayGap, SessionRange, find_gaps
from ntrader.sessions import expected_bar_closes, sessions_between

from .test_sessions import HOUR, MIN, NY, D, ny, truth_closes, truth_sessions, utc


def drop(ts: np.ndarray, *remove: int | np.ndarray) -> np.ndarray:
    gone = np.concatenate([np.atleast_1d(np.asarray(r, dtype=np.int64)) for r in remove])
    assert np.isin(gone, ts).all()
    return ts[~np.isin(ts, gone)]


def minutes(day: str, first_close: str, last_close: str) -> np.ndarray:
    """Closes of 1-minute bars first_close..last_close (NY) inclusive."""
    a, b = ny(day, first_close), ny(day, last_close)
    return np.arange(a, b + 1, MIN, dtype=np.int64)


def gaps(ts: np.ndarray, **kw: object) -> GapReport:
    args: dict[str, object] = {"calendar": "XNYS", "step_ns": MIN, "daily": False}
    args.update(kw)
    return find_gaps(ts, **args)  # type: ignore[arg-type]


def test_bad_arguments_are_input_errors() -> None:
    ts = truth_closes("2024-06-03", "2024-06-03")
    with pytest.raises(InputError):
        gaps(ts, hours="overnight")
    with pytest.raises(InputError):
        gaps(ts, step_ns=0)
    with pytest.raises(InputError):
        gaps(ts, min_run=0)
    with pytest.raises(InputError):
        gaps(np.empty(0, dtype=np.int64))


def test_weekend_is_not_a_gap() -> None:
    # The old implementation reported 2024-05-31 -> 2024-06-01 (Friday -> Saturday) as a gap.
    ts = truth_closes("2024-05-28", "2024-06-05")
    assert ts[ts <= ny("2024-05-31", "16:00")][-1] == ny("2024-05-31", "16:00")
    assert ts[ts > ny("2024-05-31", "16:00")][0] == ny("2024-06-03", "09:31")
    r = gaps(ts)
    assert r == GapReport(
        sessions_expected=7,
        sessions_present=7,
        missing_sessions=[],
        intraday_gaps=[],
        bars_expected=7 * 390,
        bars_present=7 * 390,
        bars_outside=0,
        start=D(2024, 5, 28),
        end=D(2024, 6, 5),
    )
    assert r.ok


def test_holidays_are_not_gaps() -> None:
    ts = truth_closes("2024-07-01", "2024-07-08")  # 2024-07-03 closes 13:00, 07-04 holiday
    r = gaps(ts)
    assert (r.sessions_expected, r.sessions_present) == (5, 5)
    assert (r.bars_expected, r.bars_present, r.bars_outside) == (4 * 390 + 210,) * 2 + (0,)
    assert r.missing_sessions == [] and r.intraday_gaps == []
    ts = truth_closes("2024-01-10", "2024-01-18")  # 2024-01-15 MLK day
    r = gaps(ts)
    assert (r.sessions_expected, r.bars_present, r.ok) == (6, 6 * 390, True)


def test_early_close_afternoon_is_not_a_gap() -> None:
    ts = truth_closes("2024-11-27", "2024-12-02")
    assert ts.size == 390 + 210 + 390
    r = gaps(ts)
    assert r.ok and r.bars_expected == r.bars_present == 990 and r.bars_outside == 0
    # Bars after the early close (e.g. a feed that prints 13:01..16:00) are outside, not errors.
    extra = minutes("2024-11-29", "13:01", "16:00")
    r = gaps(np.sort(np.concatenate([ts, extra])))
    assert r.ok and r.bars_present == 990 and r.bars_outside == 180


def test_dst_sessions_have_no_false_gaps_and_exact_missing_bars() -> None:
    ts = truth_closes("2024-03-07", "2024-03-13")
    assert gaps(ts).ok
    r = gaps(drop(ts, utc("2024-03-11", "13:31")))
    assert r.intraday_gaps == [
        IntradayGap(D(2024, 3, 11), utc("2024-03-11", "13:31"), utc("2024-03-11", "13:31"), 1)
    ]
    ts = truth_closes("2024-10-31", "2024-11-06")
    assert gaps(ts).ok
    r = gaps(drop(ts, utc("2024-11-04", "14:31"), utc("2024-11-04", "14:32")))
    assert r.intraday_gaps == [
        IntradayGap(D(2024, 11, 4), utc("2024-11-04", "14:31"), utc("2024-11-04", "14:32"), 2)
    ]


def test_missing_whole_session() -> None:
    ts = truth_closes("2024-06-03", "2024-06-07")
    r = gaps(drop(ts, truth_closes("2024-06-05", "2024-06-05")))
    assert r.missing_sessions == [SessionRange(D(2024, 6, 5), D(2024, 6, 5), 1)]
    assert r.intraday_gaps == []
    assert (r.sessions_expected, r.sessions_present) == (5, 4)
    assert (r.bars_expected, r.bars_present) == (5 * 390, 4 * 390)


def test_missing_sessions_across_a_weekend_and_a_holiday_merge() -> None:
    ts = truth_closes("2024-06-03", "2024-06-14")
    r = gaps(drop(ts, truth_closes("2024-06-07", "2024-06-10")))  # Friday + Monday
    assert r.missing_sessions == [SessionRange(D(2024, 6, 7), D(2024, 6, 10), 2)]
    assert (r.sessions_expected, r.sessions_present) == (10, 8)
    ts = truth_closes("2024-07-01", "2024-07-10")
    r = gaps(drop(ts, truth_closes("2024-07-03", "2024-07-05")))  # around July 4th
    assert r.missing_sessions == [SessionRange(D(2024, 7, 3), D(2024, 7, 5), 2)]
    assert r.bars_expected - r.bars_present == 210 + 390
    # Two separate holes stay separate.
    ts = truth_closes("2024-06-03", "2024-06-14")
    r = gaps(
        drop(ts, truth_closes("2024-06-04", "2024-06-04"), truth_closes("2024-06-06", "2024-06-06"))
    )
    assert r.missing_sessions == [
        SessionRange(D(2024, 6, 4), D(2024, 6, 4), 1),
        SessionRange(D(2024, 6, 6), D(2024, 6, 6), 1),
    ]


def test_intraday_run_is_exact() -> None:
    ts = truth_closes("2024-06-03", "2024-06-05")
    hole = minutes("2024-06-04", "10:00", "10:14")
    r = gaps(drop(ts, hole))
    assert r.missing_sessions == []
    assert r.intraday_gaps == [
        IntradayGap(D(2024, 6, 4), ny("2024-06-04", "10:00"), ny("2024-06-04", "10:14"), 15)
    ]
    g = r.intraday_gaps[0]
    assert g.start_local() == pd.Timestamp("2024-06-04 09:59", tz=NY)
    assert g.end_local() == pd.Timestamp("2024-06-04 10:14", tz=NY)
    assert str(g) == "2024-06-04 09:59–10:14 EDT (15 bars)"
    assert (r.bars_expected, r.bars_present) == (1170, 1155)


def test_runs_at_session_edges_do_not_merge_across_sessions() -> None:
    ts = truth_closes("2024-06-03", "2024-06-05")
    r = gaps(
        drop(ts, minutes("2024-06-03", "15:58", "16:00"), minutes("2024-06-04", "09:31", "09:32"))
    )
    assert r.intraday_gaps == [
        IntradayGap(D(2024, 6, 3), ny("2024-06-03", "15:58"), ny("2024-06-03", "16:00"), 3),
        IntradayGap(D(2024, 6, 4), ny("2024-06-04", "09:31"), ny("2024-06-04", "09:32"), 2),
    ]


def test_min_run_filters_short_runs() -> None:
    ts = truth_closes("2024-06-03", "2024-06-05")
    holed = drop(
        ts,
        minutes("2024-06-03", "11:00", "11:02"),  # 3
        minutes("2024-06-04", "14:00", "14:09"),  # 10
        ny("2024-06-05", "15:00"),  # 1
    )
    assert len(gaps(holed).intraday_gaps) == 3
    r = gaps(holed, min_run=5)
    assert r.intraday_gaps == [
        IntradayGap(D(2024, 6, 4), ny("2024-06-04", "14:00"), ny("2024-06-04", "14:09"), 10)
    ]
    assert r.bars_present == 1170 - 14
    assert gaps(holed, min_run=3).intraday_gaps[0].bars == 3
    assert gaps(holed, min_run=11).intraday_gaps == []


def test_explicit_start_and_end_report_leading_and_trailing_sessions() -> None:
    ts = truth_closes("2024-06-05", "2024-06-06")
    r = gaps(ts, start=D(2024, 5, 30), end=D(2024, 6, 11))
    assert r.missing_sessions == [
        SessionRange(D(2024, 5, 30), D(2024, 6, 4), 4),
        SessionRange(D(2024, 6, 7), D(2024, 6, 11), 3),
    ]
    assert (r.sessions_expected, r.sessions_present) == (9, 2)
    assert (r.start, r.end) == (D(2024, 5, 30), D(2024, 6, 11))
    # A narrower range ignores bars outside it.
    ts = truth_closes("2024-06-03", "2024-06-07")
    r = gaps(ts, start=D(2024, 6, 4), end=D(2024, 6, 5))
    assert (r.sessions_expected, r.bars_expected, r.bars_present, r.bars_outside) == (
        2,
        780,
        780,
        0,
    )


def test_default_range_is_first_to_last_bar_session() -> None:
    ts = truth_closes("2024-06-04", "2024-06-06")[100:-100]
    r = gaps(ts)
    assert (r.start, r.end) == (D(2024, 6, 4), D(2024, 6, 6))
    assert r.intraday_gaps == [
        IntradayGap(D(2024, 6, 4), ny("2024-06-04", "09:31"), ny("2024-06-04", "11:10"), 100),
        IntradayGap(D(2024, 6, 6), ny("2024-06-06", "14:21"), ny("2024-06-06", "16:00"), 100),
    ]


def test_extended_hours() -> None:
    ext = np.concatenate(
        [
            minutes("2024-11-27", "04:01", "20:00"),
            minutes("2024-11-29", "04:01", "17:00"),
            minutes("2024-12-02", "04:01", "20:00"),
        ]
    )
    r = gaps(ext, hours="extended")
    assert r.ok and r.bars_expected == r.bars_present == 960 + 780 + 960 and r.bars_outside == 0
    # The same data checked for regular hours: pre/post-market bars are outside, not errors.
    r = gaps(ext, hours="regular")
    assert r.ok and r.bars_present == 990 and r.bars_outside == 2700 - 990
    # A missing pre-market stretch is a gap only for extended hours.
    holed = drop(ext, minutes("2024-12-02", "07:00", "07:29"))
    assert gaps(holed, hours="regular").ok
    assert gaps(holed, hours="extended").intraday_gaps == [
        IntradayGap(D(2024, 12, 2), ny("2024-12-02", "07:00"), ny("2024-12-02", "07:29"), 30)
    ]
    # RTH-only data checked for extended hours: every session has pre/post-market holes.
    r = gaps(truth_closes("2024-11-29", "2024-11-29"), hours="extended")
    assert r.intraday_gaps == [
        IntradayGap(D(2024, 11, 29), ny("2024-11-29", "04:01"), ny("2024-11-29", "09:30"), 330),
        IntradayGap(D(2024, 11, 29), ny("2024-11-29", "13:01"), ny("2024-11-29", "17:00"), 240),
    ]


def test_unsorted_and_duplicate_input() -> None:
    ts = truth_closes("2024-06-03", "2024-06-05")
    holed = drop(ts, minutes("2024-06-04", "12:00", "12:04"))
    messy = np.concatenate([holed[::-1], holed[:50]])
    assert gaps(messy) == gaps(holed)


def test_hourly_bars() -> None:
    s = sessions_between("XNYS", D(2024, 6, 3), D(2024, 6, 5))
    ts = expected_bar_closes(s, HOUR)
    assert ts.size == 21
    r = gaps(drop(ts, ny("2024-06-04", "10:00")), step_ns=HOUR)
    assert r.intraday_gaps == [
        IntradayGap(
            D(2024, 6, 4), ny("2024-06-04", "10:00"), ny("2024-06-04", "10:00"), 1, step_ns=HOUR
        )
    ]
    assert r.intraday_gaps[0].start_local() == pd.Timestamp("2024-06-04 09:00", tz=NY)


# --------------------------------------------------------------------------------------------------
# daily bars


def daily_ts(days: list[dt.date]) -> np.ndarray:
    """Daily bar ts_event: local midnight at the start of the next calendar day."""
    return np.array(
        [pd.Timestamp(d + dt.timedelta(days=1), tz=NY).value for d in days], dtype=np.int64
    )


def test_daily_bars() -> None:
    days = truth_sessions("2024-05-01", "2024-07-31")
    ts = daily_ts(days)
    r = find_gaps(ts, calendar="XNYS", step_ns=0, daily=True)
    assert (r.start, r.end) == (D(2024, 5, 1), D(2024, 7, 31))
    assert r.ok and r.sessions_expected == r.sessions_present == len(days) == 63  # 22 + 19 + 22
    assert (r.bars_expected, r.bars_present, r.bars_outside) == (63, 63, 0)
    # Friday 2024-05-31's bar is stamped Saturday 00:00: still Friday, no weekend gap.
    assert pd.Timestamp(int(ts[days.index(D(2024, 5, 31))]), tz="UTC").tz_convert(
        NY
    ).day_name() == ("Saturday")
    gone = [D(2024, 5, 15), D(2024, 6, 7), D(2024, 6, 10), D(2024, 7, 3), D(2024, 7, 5)]
    r = find_gaps(
        daily_ts([d for d in days if d not in gone]), calendar="XNYS", step_ns=0, daily=True
    )
    assert r.missing_sessions == [
        SessionRange(D(2024, 5, 15), D(2024, 5, 15), 1),
        SessionRange(D(2024, 6, 7), D(2024, 6, 10), 2),
        SessionRange(D(2024, 7, 3), D(2024, 7, 5), 2),
    ]
    assert (r.sessions_expected, r.sessions_present, r.bars_present) == (63, 58, 58)
    assert r.intraday_gaps == []


def test_daily_bars_explicit_range_and_bars_outside() -> None:
    days = truth_sessions("2024-03-04", "2024-03-15")  # spans the March DST switch
    ts = np.sort(np.concatenate([daily_ts(days), daily_ts([D(2024, 3, 9)])]))  # + a Saturday bar
    r = find_gaps(
        ts, calendar="NASDAQ", step_ns=0, daily=True, start=D(2024, 2, 28), end=D(2024, 3, 19)
    )
    assert r.missing_sessions == [
        SessionRange(D(2024, 2, 28), D(2024, 3, 1), 3),
        SessionRange(D(2024, 3, 18), D(2024, 3, 19), 2),
    ]
    assert (r.sessions_expected, r.sessions_present, r.bars_outside) == (15, 10, 1)


# --------------------------------------------------------------------------------------------------
# property: missing bars are all accounted for


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5 * 390 - 1), max_size=400, unique=True))
def test_missing_bars_are_accounted_for(removed: list[int]) -> None:
    ts = truth_closes("2024-06-03", "2024-06-07")
    keep = np.ones(ts.size, dtype=bool)
    keep[removed] = False
    holed = ts[keep]
    if holed.size == 0:
        return
    r = gaps(holed, start=D(2024, 6, 3), end=D(2024, 6, 7))
    in_missing_sessions = 390 * sum(m.sessions for m in r.missing_sessions)
    assert r.bars_expected == ts.size
    assert r.bars_present == holed.size
    assert r.bars_expected - r.bars_present == in_missing_sessions + sum(
        g.bars for g in r.intraday_gaps
    )
    missing = set(ts[~keep].tolist())
    for g in r.intraday_gaps:
        run = set(range(g.first_missing_ns, g.last_missing_ns + 1, MIN))
        assert len(run) == g.bars and run <= missing


def test_no_bars_with_an_explicit_range_misses_every_session() -> None:
    r = gaps(np.empty(0, dtype=np.int64), start=D(2024, 5, 30), end=D(2024, 6, 4))
    assert r.missing_sessions == [SessionRange(D(2024, 5, 30), D(2024, 6, 4), 4)]
    assert (r.sessions_expected, r.sessions_present, r.bars_expected, r.bars_present) == (
        4,
        0,
        4 * 390,
        0,
    )

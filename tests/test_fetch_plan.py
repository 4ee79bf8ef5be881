"""IB request planning over missing sessions, checked against exchange_calendars itself."""

from __future__ import annotations

import datetime as dt
import functools
import math

import exchange_calendars as xc
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntrader.errors import InputError
from ntrader.ibkr.plan import (
    IB_BAR_SIZES,
    PlannedRequest,
    default_chunk_sessions,
    ib_bar_size,
    optimal_request_count,
    plan,
    what_to_show,
)

D = dt.date


def at(day: str, hhmm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


@functools.cache
def _truth() -> xc.ExchangeCalendar:
    return xc.get_calendar("XNYS", start="2023-01-01", end="2025-12-31")


@functools.cache
def truth_sessions() -> tuple[dt.date, ...]:
    return tuple(d.date() for d in _truth().sessions)


@functools.cache
def truth_close(day: dt.date) -> dt.datetime:
    close = _truth().schedule.loc[pd.Timestamp(day), "close"]
    return pd.Timestamp(close).tz_convert("UTC").to_pydatetime()


def truth_runs(missing: set[dt.date]) -> list[list[dt.date]]:
    """Maximal runs of consecutive exchange sessions that are all missing."""
    runs: list[list[dt.date]] = []
    prev_missing = False
    for day in truth_sessions():
        if day in missing:
            if prev_missing:
                runs[-1].append(day)
            else:
                runs.append([day])
        prev_missing = day in missing
    return runs


# --------------------------------------------------------------------------------------------------
# bar specs and chunk sizes


@pytest.mark.parametrize(
    ("spec", "size", "what"),
    [
        ("1-MINUTE-LAST", "1 min", "TRADES"),
        ("5-MINUTE-LAST", "5 mins", "TRADES"),
        ("15-MINUTE-MID", "15 mins", "MIDPOINT"),
        ("30-MINUTE-BID", "30 mins", "BID"),
        ("1-HOUR-LAST", "1 hour", "TRADES"),
        ("4-HOUR-ASK", "4 hours", "ASK"),
        ("1-DAY-LAST", "1 day", "TRADES"),
        ("30-SECOND-LAST", "30 secs", "TRADES"),
        ("1-SECOND-LAST", "1 secs", "TRADES"),  # IB spells one second "1 secs"
        (" 1-minute-last ", "1 min", "TRADES"),
        ("1-MINUTE-LAST-EXTERNAL", "1 min", "TRADES"),
    ],
)
def test_bar_specs_map_to_ib(spec: str, size: str, what: str) -> None:
    assert ib_bar_size(spec) == size
    assert what_to_show(spec) == what
    assert size in IB_BAR_SIZES


@pytest.mark.parametrize(
    "spec",
    [
        "7-MINUTE-LAST",
        "1-WEEK-LAST",
        "1-MIN-LAST",
        "1-MINUTE",
        "1-MINUTE-MARK",
        "MINUTE-1-LAST",
        "",
    ],
)
def test_unsupported_bar_specs_list_the_supported_ones(spec: str) -> None:
    with pytest.raises(InputError) as err:
        ib_bar_size(spec)
    assert "1/2/3/5/10/15/20/30-MINUTE" in (err.value.hint or "")
    assert "-MID" in (err.value.hint or "")
    with pytest.raises(InputError):
        what_to_show(spec)


@pytest.mark.parametrize(
    ("size", "chunk"),
    [
        ("1 min", 1),
        ("5 mins", 5),
        ("15 mins", 10),
        ("30 mins", 10),
        ("1 hour", 20),
        ("1 day", 250),
        ("1 secs", 1),
        ("30 secs", 1),
    ],
)
def test_default_chunk_sessions(size: str, chunk: int) -> None:
    assert default_chunk_sessions(size) == chunk


def test_every_ib_bar_size_has_a_chunk_within_ib_limits() -> None:
    for size in IB_BAR_SIZES:
        assert 1 <= default_chunk_sessions(size) <= 365


def test_unknown_bar_size_is_an_input_error() -> None:
    with pytest.raises(InputError, match="1 mins"):
        default_chunk_sessions("1 mins")
    with pytest.raises(InputError):
        plan([D(2024, 1, 2)], bar_size="1 week")


@pytest.mark.parametrize("chunk", [0, -1, 366])
def test_chunk_sessions_must_fit_ib(chunk: int) -> None:
    with pytest.raises(InputError):
        plan([D(2024, 1, 2)], chunk_sessions=chunk)
    with pytest.raises(InputError):
        optimal_request_count([D(2024, 1, 2)], calendar="XNYS", chunk_sessions=chunk)


# --------------------------------------------------------------------------------------------------
# plans


def test_nothing_missing_plans_nothing() -> None:
    assert plan([]) == []
    assert optimal_request_count([], calendar="XNYS", chunk_sessions=5) == 0


def test_non_sessions_are_ignored() -> None:
    weekend_and_holidays = [D(2024, 7, 4), D(2024, 7, 6), D(2024, 7, 7), D(2024, 12, 25)]
    assert plan(weekend_and_holidays) == []
    assert optimal_request_count(weekend_and_holidays, calendar="XNYS", chunk_sessions=1) == 0


def test_a_run_across_a_holiday_and_a_weekend_is_one_request() -> None:
    # 07-03 (early close) | 07-04 holiday | 07-05 Fri | weekend | 07-08 Mon: consecutive sessions
    missing = [D(2024, 7, 8), D(2024, 7, 2), D(2024, 7, 3), D(2024, 7, 4), D(2024, 7, 5)]
    missing += [D(2024, 7, 6), D(2024, 7, 3)]  # a Saturday and a duplicate
    (req,) = plan(missing, bar_size="5 mins")
    assert req == PlannedRequest(
        sessions=(D(2024, 7, 2), D(2024, 7, 3), D(2024, 7, 5), D(2024, 7, 8)),
        end_utc=at("2024-07-08", "20:00"),
        duration="4 D",
        bar_size="5 mins",
        use_rth=True,
    )
    assert optimal_request_count(missing, calendar="XNYS", chunk_sessions=5) == 1
    # 1-minute bars: one session per request, each ending at its own close
    one_min = plan(missing)
    assert [r.sessions for r in one_min] == [
        (D(2024, 7, 2),),
        (D(2024, 7, 3),),
        (D(2024, 7, 5),),
        (D(2024, 7, 8),),
    ]
    assert [r.end_utc for r in one_min] == [
        at("2024-07-02", "20:00"),
        at("2024-07-03", "17:00"),  # early close 13:00 New York
        at("2024-07-05", "20:00"),
        at("2024-07-08", "20:00"),
    ]
    assert {r.duration for r in one_min} == {"1 D"}


def test_a_missing_session_in_between_splits_the_run() -> None:
    missing = [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 5), D(2024, 1, 8)]
    reqs = plan(missing, bar_size="1 hour")
    assert [r.sessions for r in reqs] == [
        (D(2024, 1, 2), D(2024, 1, 3)),
        (D(2024, 1, 5), D(2024, 1, 8)),
    ]
    assert [r.duration for r in reqs] == ["2 D", "2 D"]


def test_early_close_end_times() -> None:
    (rth,) = plan([D(2024, 11, 29)])
    assert rth.end_utc == at("2024-11-29", "18:00")  # 13:00 New York
    (ext,) = plan([D(2024, 11, 29)], use_rth=False)
    assert ext.end_utc == at("2024-11-29", "22:00")  # post-market until 17:00 New York
    assert ext.use_rth is False
    (normal_ext,) = plan([D(2024, 11, 27)], use_rth=False)
    assert normal_ext.end_utc == at("2024-11-28", "01:00")  # 20:00 New York
    assert rth.end_utc.tzinfo is not None
    assert rth.end_utc.utcoffset() == dt.timedelta(0)


def test_dst_end_times() -> None:
    fri, mon = plan([D(2024, 3, 8), D(2024, 3, 11)])
    assert fri.end_utc == at("2024-03-08", "21:00")  # EST
    assert mon.end_utc == at("2024-03-11", "20:00")  # EDT
    (both,) = plan([D(2024, 3, 8), D(2024, 3, 11)], bar_size="5 mins")
    assert both.end_utc == at("2024-03-11", "20:00")
    (fall,) = plan([D(2024, 11, 4)], use_rth=False)
    assert fall.end_utc == at("2024-11-05", "01:00")  # 20:00 EST


def test_chunks_of_a_long_run() -> None:
    missing = list(truth_sessions()[truth_sessions().index(D(2024, 1, 2)) :][:23])
    reqs = plan(missing, bar_size="5 mins")
    assert [len(r.sessions) for r in reqs] == [5, 5, 5, 5, 3]
    assert [r.duration for r in reqs] == ["5 D", "5 D", "5 D", "5 D", "3 D"]
    assert [s for r in reqs for s in r.sessions] == missing
    assert [r.end_utc for r in reqs] == [truth_close(r.sessions[-1]) for r in reqs]
    assert len(plan(missing, bar_size="5 mins", chunk_sessions=23)) == 1
    assert len(plan(missing, bar_size="1 min")) == 23
    assert len(plan(missing, bar_size="1 day")) == 1


def test_a_year_of_daily_bars() -> None:
    year = [d for d in truth_sessions() if d.year == 2024]
    reqs = plan(year, bar_size="1 day")
    assert [r.duration for r in reqs] == ["250 D", "2 D"]  # 252 sessions in 2024
    assert optimal_request_count(year, calendar="XNYS", chunk_sessions=250) == 2


def test_calendar_by_venue_name() -> None:
    assert plan([D(2024, 7, 5)], calendar="NASDAQ") == plan([D(2024, 7, 5)])


def test_datetimes_count_as_their_date() -> None:
    assert plan([dt.datetime(2024, 7, 5, 12, 0)]) == plan([D(2024, 7, 5)])


# --------------------------------------------------------------------------------------------------
# property: minimal, exact coverage, consecutive chunks


_DAYS = st.dates(min_value=D(2023, 12, 1), max_value=D(2025, 1, 31))


@settings(max_examples=200, deadline=None)
@given(
    missing=st.lists(_DAYS, max_size=120),
    run_starts=st.lists(st.tuples(_DAYS, st.integers(1, 40)), max_size=4),
    chunk=st.integers(1, 30),
    use_rth=st.booleans(),
)
def test_plans_are_minimal_and_cover_each_missing_session_once(
    missing: list[dt.date], run_starts: list[tuple[dt.date, int]], chunk: int, use_rth: bool
) -> None:
    sessions = truth_sessions()
    for start, length in run_starts:  # add long runs so chunking is exercised
        i = next(k for k, d in enumerate(sessions) if d >= start)
        missing += sessions[i : i + length]
    wanted = set(missing) & set(sessions)

    reqs = plan(missing, bar_size="1 min", use_rth=use_rth, chunk_sessions=chunk)
    runs = truth_runs(wanted)
    minimum = sum(math.ceil(len(run) / chunk) for run in runs)
    assert (
        len(reqs)
        == minimum
        == optimal_request_count(missing, calendar="XNYS", chunk_sessions=chunk)
    )

    covered = [s for r in reqs for s in r.sessions]
    assert sorted(covered) == sorted(wanted)  # each missing session exactly once
    assert covered == sorted(covered)  # requests in calendar order
    index = {d: k for k, d in enumerate(sessions)}
    for r in reqs:
        assert 1 <= len(r.sessions) <= chunk
        ks = [index[s] for s in r.sessions]
        assert ks == list(range(ks[0], ks[0] + len(ks)))  # consecutive sessions
        assert r.duration == f"{len(r.sessions)} D"
        assert r.use_rth is use_rth and r.bar_size == "1 min"
        close = truth_close(r.sessions[-1])
        if use_rth:
            assert r.end_utc == close
        else:
            assert close < r.end_utc <= close + dt.timedelta(hours=4)

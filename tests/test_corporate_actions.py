"""The pieces of the split-scale check (issue 14 §1, §2): rescaling bars, comparing a stored
session with IB's answer, finding every old-scale session from daily bars, the policy, and the
event record in a real catalog. The end-to-end runs against the simulator are in
``test_sim_corporate.py``."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import numpy as np
import pytest

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.corporate import (
    SplitEvent,
    load_events,
    record_event,
    rescale_frame,
    rescale_sessions,
)
from ntrader.errors import InputError
from ntrader.ibkr.sim.corporate import apply
from ntrader.ibkr.sim.market import BarSet
from ntrader.ibkr.verify import CorporateActionPolicy, compare_session, localize
from ntrader.sessions import expected_bar_closes, sessions_between

from .conftest import tree_snapshot


def frame(ts, close, *, volume=None, precision=2) -> BarFrame:
    c = np.asarray(close, dtype=np.float64)
    v = np.full(len(c), 100.0) if volume is None else np.asarray(volume, dtype=np.float64)
    return BarFrame(np.asarray(ts, dtype=np.int64), c, c + 0.05, c - 0.05, c, v, precision, 0)


def ratios(n: int, r: Fraction) -> np.ndarray:
    return np.tile([r.numerator, r.denominator], (n, 1)).astype(np.int64)


def test_rescale_matches_the_simulators_adjustment_to_the_cent():
    rng = np.random.default_rng(7)
    cents = rng.integers(1, 90_000, 2_000).astype(np.int64)
    hi, lo = cents + rng.integers(0, 50, cents.size), np.maximum(1, cents - 40)
    vol = rng.integers(1, 10_000, cents.size).astype(np.int64)
    ts = np.arange(cents.size, dtype=np.int64) + 1
    raw = BarSet(ts, cents, hi, lo, cents, vol, np.zeros(cents.size, "datetime64[D]"), False, [])
    stored = BarFrame(ts, cents / 100, hi / 100, lo / 100, cents / 100, vol * 1.0, 2, 0)
    for r in (Fraction(4), Fraction(3, 2), Fraction(1, 10), Fraction(7)):
        want = apply(raw, r, np.ones(cents.size))
        got = rescale_frame(stored, ratios(len(stored), r))
        for key in ("open", "high", "low", "close"):
            np.testing.assert_array_equal(getattr(got, key), getattr(want, key) / 100, str(r))
        np.testing.assert_array_equal(got.volume, want.volume.astype(float), str(r))
        assert np.all(got.low <= np.minimum(got.open, got.close))
        assert np.all(got.high >= np.maximum(got.open, got.close))


def test_rescale_keeps_one_tick_and_leaves_unit_ratios_alone():
    f = frame([1, 2], [0.01, 10.00])
    got = rescale_frame(f, np.array([[100, 1], [1, 1]]))
    assert got.close.tolist() == [0.01, 10.00]  # never below one tick; (1, 1) unchanged
    assert got.volume.tolist() == [10_000.0, 100.0]


def test_compare_session_verdicts():
    ts = np.arange(1, 391)
    ib = frame(ts, np.linspace(100, 110, 390))
    day = dt.date(2024, 6, 7)
    same, _ = compare_session(ib, ib, 0.05, session=day, how="folded")
    assert (same.verdict, same.bars, same.measured) == ("same", 390, 1.0)
    old = rescale_frame(ib, ratios(390, Fraction(1, 4)))  # stored before a 4:1 split
    split, ratio = compare_session(old, ib, 0.05, session=day, how="folded")
    assert (split.verdict, split.ratio, ratio) == ("split", "4:1", Fraction(4))
    bad = frame(ts, np.linspace(100, 110, 390) * 1.25)
    assert compare_session(bad, ib, 0.05, session=day, how="request")[0].verdict == "differs"
    none = compare_session(old, frame(ts + 10_000, ib.close), 0.05, session=day, how="request")
    assert none[0].verdict == "unverified" and none[0].bars == 0
    # one wild bar does not move the median
    spiky = frame(ts, np.r_[ib.close[:-1], ib.close[-1] * 4])
    assert compare_session(spiky, ib, 0.05, session=day, how="folded")[0].verdict == "same"


def test_localize_finds_each_sessions_scale_from_daily_bars():
    cal = "XNYS"
    sessions = sessions_between(cal, dt.date(2024, 1, 2), dt.date(2024, 3, 28))
    ts = expected_bar_closes(sessions, 30 * 60 * 10**9)
    price = 100 + np.arange(ts.size) * 0.01
    stored = frame(ts, price)
    days = sessions.date_list()
    # IB's daily bars today: each session's regular-hours OHLC in today's scale (a 2:1 split
    # after the January sessions were stored, a 3:1 after the February ones: 6x and 3x off)
    scale = {d: 6 if d.month == 1 else 3 if d.month == 2 else 1 for d in days}
    day_of = np.repeat(np.arange(len(days)), 13)
    ib = {}
    for k, d in enumerate(days):
        p = price[day_of == k]
        ib[d] = (
            p[0] / scale[d],
            (p.max() + 0.05) / scale[d],
            (p.min() - 0.05) / scale[d],
            p[-1] / scale[d],
        )
    ib[days[-1]] = tuple(x * 1.3 for x in ib[days[-1]])  # a session off by no split ratio
    loc = localize(stored, ib, cal, daily=False, tolerance=0.05)
    assert loc.compared == len(days)
    assert {d for d, r in loc.ratios.items() if r == 6} == {d for d in days if d.month == 1}
    assert {d for d, r in loc.ratios.items() if r == 3} == {d for d in days if d.month == 2}
    assert list(loc.differs) == [days[-1]] and loc.differs[days[-1]] == pytest.approx(1 / 1.3)


def test_policy_is_validated_with_a_hint():
    assert CorporateActionPolicy.of(None) == CorporateActionPolicy("session", "rescale", 0.05)
    assert CorporateActionPolicy.of({"verify": "FULL", "tolerance": "0.03"}).verify == "full"
    for bad in (
        {"verify": "sometimes"},
        {"on_change": "ignore"},
        {"tolerance": "x"},
        {"tolerance": 0.5},
        {"tolerance": 0},
    ):
        with pytest.raises(InputError, match="corporate_actions") as err:
            CorporateActionPolicy.of(bad)
        assert err.value.hint


def test_a_bogus_on_change_is_refused_before_anything_is_asked(run_script, tmp_path):
    r = run_script(
        "fetch",
        "symbols=[AAPL]",
        "dates.start=2024-06-03",
        "dates.end=2024-06-07",
        f"catalog.path={tmp_path / 'c'}",
        "corporate_actions.on_change=ignore",
        env={"IBKR_PORT": "1"},  # nothing listens: a connection attempt would be exit 3
    )
    assert r.code == 2, r.stderr
    assert "corporate_actions.on_change must be one of rescale, refetch, fail" in r.stderr
    assert not (tmp_path / "c").exists()


def _stored(tmp_path, aapl):
    _, bt, equity = aapl
    cat = Catalog(tmp_path / "catalog")
    sessions = sessions_between("XNYS", dt.date(2024, 6, 3), dt.date(2024, 6, 7))
    ts = expected_bar_closes(sessions, 60 * 10**9)
    cat.write_bars(bt, frame(ts, np.full(ts.size, 400.0)), instrument=equity)
    return cat, str(bt), sessions


def test_rescale_sessions_is_one_commit_of_just_those_sessions(tmp_path, aapl):
    cat, bt, sessions = _stored(tmp_path, aapl)
    days = sessions.date_list()
    done = rescale_sessions(cat, bt, {d: Fraction(4) for d in days[:3]}, sessions.tz)
    assert done == {"sessions": 3, "first": "2024-06-03", "last": "2024-06-05", "bars": 3 * 390}
    got = cat.read(bt)
    assert got.close.tolist() == [100.0] * (3 * 390) + [400.0] * (2 * 390)
    assert got.volume.tolist() == [400.0] * (3 * 390) + [100.0] * (2 * 390)
    assert len(cat.files(bt)) == 1


def test_events_round_trip_outside_data_and_refuse_a_hostile_id(tmp_path, aapl):
    cat, _, _ = _stored(tmp_path, aapl)
    data = tree_snapshot(tmp_path / "catalog" / "data")
    event = SplitEvent(
        "AAPL.NASDAQ",
        Fraction(1, 10),
        dt.date(2024, 6, 7),
        dt.date(2024, 6, 10),
        dt.datetime(2024, 6, 10, 22, tzinfo=dt.UTC),
        "test",
        "rescale",
        {"AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL": {"sessions": 5}},
        pinned=True,
    )
    record_event(cat, event)
    record_event(cat, event)
    assert load_events(cat, "AAPL.NASDAQ") == [event, event]
    assert event.describe() == (
        "split 1:10 of AAPL.NASDAQ (effective on 2024-06-10): 5 stored session(s) in the old "
        "scale rescaled in 1 bar type(s)"
    )
    assert tree_snapshot(tmp_path / "catalog" / "data") == data  # plain readers see only bars
    assert (tmp_path / "catalog" / ".ntrader" / "corporate_actions" / "AAPL.NASDAQ.json").exists()
    for hostile in ("../../etc/x.NASDAQ", "AAPL"):
        with pytest.raises(InputError):
            load_events(cat, hostile)

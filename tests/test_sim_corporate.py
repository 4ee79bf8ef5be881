"""The TWS simulator has corporate actions (issue 14 §6), and what they do to a catalog today.

On the simulator's clock ("now"): TRADES answers are split-adjusted as of now, ADJUSTED_LAST also
dividend-adjusted and only for requests ending now. A fetch before a 4:1 split, the clock moved
past it and a fetch of the next sessions leave the catalog with a 4x cliff — which ``make check``
reports as a possible split on the right day — while a clean fetch after the split has one scale.
Driven by the real ib_async client and ``scripts/fetch.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from ib_async import IB, RequestError, Stock

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.corporate import load_events
from ntrader.ibkr.sim import DAILY, Faults, ground_truth, run_simulator
from ntrader.ibkr.sim.corporate import Dividend, Split, parse_action

from .conftest import tree_snapshot
from .test_fetch import fetch

NY = ZoneInfo("America/New_York")
BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
MINUTE = 60_000_000_000
SPLIT = Split("AAPL", dt.date(2024, 6, 10), Fraction(4))


class Clock:
    """A wall clock a test moves."""

    def __init__(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def set(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def evening(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T18:00").replace(tzinfo=NY)


def scaled(truth: dict[str, np.ndarray], scale: float, key: str) -> np.ndarray:
    if key == "volume":
        return truth[key] * scale
    cents = np.round(truth[key] * 100)  # the simulator's prices are integer cents
    return np.maximum(1, np.round(cents / scale)) / 100


def split_findings(run_script, root):
    r = run_script("scan", f"catalog.path={root}", "symbol=AAPL", "format=json")
    assert r.code == 0, r.stderr
    return [h for h in json.loads(r.stdout)["health"] if h["kind"] == "possible_split"]


def assert_scale(root, truth, scale_of, bar_type=BT, step=MINUTE):
    """The catalog's bars equal the simulator's model, each bar at ``scale_of(after)``."""
    got = Catalog(root).read(bar_type)
    np.testing.assert_array_equal(got.ts_event, truth["ts_open_ns"] + step)
    after = truth["ts_open_ns"] >= dt.datetime(2024, 6, 10, tzinfo=NY).timestamp() * 1e9
    for key in ("open", "high", "low", "close", "volume"):
        want = np.where(
            after, scaled(truth, scale_of(True), key), scaled(truth, scale_of(False), key)
        )
        np.testing.assert_array_equal(getattr(got, key), want, err_msg=key)


TRUTH = ("AAPL", dt.date(2024, 6, 3), dt.date(2024, 6, 14))


def test_without_the_check_a_split_leaves_a_cliff_that_check_names(run_script, tmp_path):
    stale = tmp_path / "stale"
    clock = Clock(evening("2024-06-07"))
    off = "corporate_actions.verify=off"
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT]) as sim:
        assert fetch(run_script, sim, stale, "2024-06-03", "2024-06-07", off).code == 0
        clock.set(evening("2024-06-14"))  # the 4:1 split was effective on 2024-06-10
        r = fetch(run_script, sim, stale, "2024-06-10", "2024-06-14", off)
    assert r.code == 0, r.stderr
    assert (
        "Split scale of the stored history NOT checked (corporate_actions.verify=off)" in r.stdout
    )
    assert_scale(stale, ground_truth(*TRUTH), lambda after: 4 if after else 1)
    (found,) = split_findings(run_script, stale)
    assert "possible split on 2024-06-10 (ratio 4:1" in found["message"]


def test_fetch_split_fetch_finds_the_split_and_rescales_to_a_clean_fetch(run_script, tmp_path):
    stale, clean = tmp_path / "stale", tmp_path / "clean"
    clock = Clock(evening("2024-06-07"))
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT]) as sim:
        first = fetch(run_script, sim, stale, "2024-06-03", "2024-06-07")
        assert first.code == 0 and first.summary()["counts"]["verify_requests"] == 0
        clock.set(evening("2024-06-14"))
        n = len(sim.requests)
        r = fetch(run_script, sim, stale, "2024-06-10", "2024-06-14")
        s = r.summary()
        asked = sim.requests[n:]
        assert fetch(run_script, sim, clean, "2024-06-03", "2024-06-14").code == 0
    assert r.code == 0, r.stderr
    # the stored 2024-06-07 rode on the first request (2 D); one daily request found the sessions
    assert [(q.duration, q.bar_size) for q in asked[:1]] == [("2 D", "1 min")]
    assert (asked[1].bar_size, asked[1].end_date_time, asked[1].what_to_show) == (
        "1 day",
        "",
        "TRADES",
    )
    assert len(asked) == 6 and all(q.outcome == "ok" for q in asked)
    truth = ground_truth(*TRUTH)
    assert_scale(stale, truth, lambda after: 4)
    assert_scale(clean, truth, lambda after: 4)
    assert split_findings(run_script, stale) == []
    assert s["counts"]["requests"] == 6 and s["counts"]["verify_requests"] == 1
    assert s["counts"]["splits_repaired"] == 1
    (event,) = s["corporate_actions"]["events"]
    assert event["ratio"] == "4:1" and event["repair"] == "rescale"
    assert (event["effective_after"], event["effective_by"]) == ("2024-06-07", "2024-06-14")
    assert event["effective_on"] is None  # the catalog cannot tell which of 06-10 .. 06-14
    assert event["bar_types"][BT] == {
        "sessions": 5,
        "first": "2024-06-03",
        "last": "2024-06-07",
        "bars": 1950,
    }
    assert "2024-06-07" in event["detected_by"] and "stored / IB = 4" in event["detected_by"]
    (stored,) = load_events(Catalog(stale), "AAPL.NASDAQ")
    assert stored.as_json() == event
    assert s["instruments"][0]["scale_check"]["verdict"] == "split"
    assert "SPLIT REPAIRED: split 4:1 of AAPL.NASDAQ (effective after 2024-06-07, by " in r.stdout
    assert "5 stored session(s) in the old scale rescaled in 1 bar type(s)" in r.stdout
    assert load_events(Catalog(clean), "AAPL.NASDAQ") == []


def test_a_nightly_fetch_pins_the_split_date_and_repairs_every_bar_type(run_script, tmp_path):
    root = tmp_path / "catalog"
    five = "AAPL.NASDAQ-5-MINUTE-LAST-EXTERNAL"
    clock = Clock(evening("2024-06-07"))
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT]) as sim:
        assert fetch(run_script, sim, root, "2024-06-03", "2024-06-07").code == 0
        assert (
            fetch(run_script, sim, root, "2024-06-03", "2024-06-07", "bars.spec=5-MINUTE-LAST").code
            == 0
        )
        clock.set(evening("2024-06-10"))
        r = fetch(run_script, sim, root, "2024-06-10", "2024-06-10")
    assert r.code == 0, r.stderr
    (event,) = r.summary()["corporate_actions"]["events"]
    assert event["effective_on"] == "2024-06-10"
    assert set(event["bar_types"]) == {BT, five} and event["bar_types"][five]["bars"] == 5 * 78
    assert "split 4:1 of AAPL.NASDAQ (effective on 2024-06-10)" in r.stdout
    truth = ground_truth("AAPL", dt.date(2024, 6, 3), dt.date(2024, 6, 10))
    assert_scale(root, truth, lambda after: 4)
    five_truth = ground_truth("AAPL", dt.date(2024, 6, 3), dt.date(2024, 6, 7), bar_minutes=5)
    assert_scale(root, five_truth, lambda after: 4, bar_type=five, step=5 * MINUTE)


def test_on_change_fail_changes_nothing_and_refetch_asks_again(run_script, tmp_path):
    root = tmp_path / "catalog"
    clock = Clock(evening("2024-06-07"))
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT]) as sim:
        assert fetch(run_script, sim, root, "2024-06-03", "2024-06-07").code == 0
        before = tree_snapshot(root / "data")
        clock.set(evening("2024-06-12"))
        failed = fetch(
            run_script, sim, root, "2024-06-10", "2024-06-12", "corporate_actions.on_change=fail"
        )
        unchanged = tree_snapshot(root / "data")
        n = len(sim.requests)
        again = fetch(
            run_script, sim, root, "2024-06-10", "2024-06-12", "corporate_actions.on_change=refetch"
        )
        asked = sim.requests[n:]
    assert failed.code == 1, failed.stderr
    assert unchanged == before
    assert "5 session(s) (2024-06-03 .. 2024-06-07) are 4:1 off IB's answer now" in failed.stderr
    assert "corporate_actions.on_change=rescale" in failed.stderr
    assert load_events(Catalog(root), "AAPL.NASDAQ")[0].repair == "refetch"
    assert again.code == 0, again.stderr
    # probe (2 D) + daily + the five old sessions asked again + 06-11 and 06-12
    assert (
        len(asked) == 9 and sum(q.bar_size == "1 min" and q.duration == "1 D" for q in asked) == 7
    )
    (event,) = again.summary()["corporate_actions"]["events"]
    assert (
        event["bar_types"][BT]["refetched_bars"] == 1950 and event["bar_types"][BT]["requests"] == 5
    )
    assert_scale(root, ground_truth("AAPL", dt.date(2024, 6, 3), dt.date(2024, 6, 12)), lambda a: 4)


def test_no_false_detection_over_a_year_with_gaps_and_a_full_audit(run_script, tmp_path):
    """A year of daily bars and a half year of 30-minute bars with sessions IB had no data for:
    the probe and the full audit (every stored session against IB's daily bars) find nothing."""
    root = tmp_path / "catalog"
    holes = frozenset({dt.date(2023, 8, 15), dt.date(2023, 11, 3)})
    clock = Clock(evening("2024-01-31"))
    with run_simulator(Faults(no_data_sessions=holes), wall_clock=clock) as sim:
        daily = fetch(run_script, sim, root, "2023-01-03", "2023-12-29", "bars.spec=1-DAY-LAST")
        half = fetch(run_script, sim, root, "2023-07-03", "2023-12-29", "bars.spec=30-MINUTE-LAST")
        assert daily.code == 0 and half.code == 0
        r = fetch(
            run_script,
            sim,
            root,
            "2024-01-02",
            "2024-01-31",
            "bars.spec=30-MINUTE-LAST",
            "corporate_actions.verify=full",
        )
    assert r.code == 0, r.stderr
    s = r.summary()
    assert s["counts"]["splits_repaired"] == 0 and s["counts"]["scale_differs"] == 0
    assert s["counts"]["verify_requests"] == 1  # the audit; the probe rode on a request
    check = s["instruments"][0]["scale_check"]
    assert (
        check["verdict"] == "same" and check["session"] == "2023-12-29" and check["how"] == "folded"
    )
    assert check["bars"] == 13 and check["measured"] == 1.0
    assert "SPLIT" not in r.stdout and "WARNING" not in r.stdout
    assert load_events(Catalog(root), "AAPL.NASDAQ") == []


def _daily(ib: IB, what: str, end: str = "") -> list:
    return ib.reqHistoricalData(
        Stock("AAPL", "SMART", "USD"), end, "20 D", "1 day", what, True, formatDate=1, timeout=10
    )


def test_adjusted_last_is_dividend_adjusted_and_only_ends_now():
    dividend = Dividend("AAPL", dt.date(2024, 6, 5), 0.50)
    clock = Clock(evening("2024-06-14"))
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT, dividend]) as sim:
        ib = IB()
        ib.RaiseRequestErrors = True
        ib.connect("127.0.0.1", sim.port, clientId=3, timeout=5)
        try:
            trades, adjusted = _daily(ib, "TRADES"), _daily(ib, "ADJUSTED_LAST")
            with pytest.raises(RequestError, match="adjusted last"):
                _daily(ib, "ADJUSTED_LAST", "20240614 16:00:00 US/Eastern")
        finally:
            ib.disconnect()
    days = [b.date for b in trades]
    assert days == [b.date for b in adjusted] and dt.date(2024, 6, 5) in days
    truth = ground_truth("AAPL", days[0], days[-1], bar_minutes=DAILY)
    np.testing.assert_array_equal([b.close for b in trades], scaled(truth, 4, "close"))
    ex = days.index(dt.date(2024, 6, 5))
    # the ex-date is before the split: 0.50 per old share is 0.125 per share of today's scale
    factor = 1 - (0.50 / 4) / trades[ex - 1].close
    expected = [round(b.close * (factor if i < ex else 1.0), 2) for i, b in enumerate(trades)]
    assert [b.close for b in adjusted] == pytest.approx(expected, abs=0.011)
    assert [b.volume for b in adjusted] == [b.volume for b in trades]
    assert adjusted[ex - 1].close < trades[ex - 1].close and adjusted[ex].close == trades[ex].close


def test_corporate_action_text():
    assert parse_action("split:aapl:2024-06-10:4") == SPLIT
    assert parse_action("split:X:2024-06-10:1/10").ratio == Fraction(1, 10)
    assert parse_action("dividend:X:2024-05-10:0.24") == Dividend("X", dt.date(2024, 5, 10), 0.24)
    for bad in ("split:X:2024-06-10:0", "split:X:notadate:4", "merger:X:2024-01-02:1", "dividend"):
        with pytest.raises(ValueError, match="bad corporate action"):
            parse_action(bad)


def test_the_cli_refuses_a_bad_action_or_clock():
    import subprocess
    import sys

    for args in (["--action", "split:AAPL:2024-06-10:x"], ["--now", "yesterday"]):
        p = subprocess.run(
            [sys.executable, "-m", "ntrader.ibkr.sim", "--port", "0", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 2 and "error:" in p.stderr, p.stderr


def test_a_backtests_auto_fetch_repairs_the_split_and_says_so(run_script, tmp_path):
    root = tmp_path / "catalog"
    clock = Clock(evening("2024-06-07"))
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT]) as sim:
        assert fetch(run_script, sim, root, "2024-06-03", "2024-06-07").code == 0
        clock.set(evening("2024-06-14"))
        env = {"IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(sim.port)}
        r = run_script(
            "backtest",
            f"catalog.path={root}",
            "symbol=AAPL",
            "dates.start=2024-06-03",
            "dates.end=2024-06-14",
            "reports.tearsheet=false",
            "reports.equity_png=false",
            env=env,
        )
    assert r.code == 0, r.stderr
    s = r.summary()
    assert s["counts"]["fetched_bars"] == 5 * 390 and s["counts"]["splits_repaired"] == 1
    (event,) = s["corporate_actions"]
    assert event["ratio"] == "4:1" and event["bar_types"][BT]["sessions"] == 5
    assert "split 4:1 of AAPL.NASDAQ" in r.stderr
    assert_scale(root, ground_truth(*TRUTH), lambda after: 4)

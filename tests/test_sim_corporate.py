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
from ntrader.ibkr.sim import DAILY, ground_truth, run_simulator
from ntrader.ibkr.sim.corporate import Dividend, Split, parse_action

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


def test_fetch_split_fetch_leaves_a_cliff_that_check_names(run_script, tmp_path):
    stale, clean = tmp_path / "stale", tmp_path / "clean"
    clock = Clock(evening("2024-06-07"))
    with run_simulator(wall_clock=clock, corporate_actions=[SPLIT]) as sim:
        assert fetch(run_script, sim, stale, "2024-06-03", "2024-06-07").code == 0
        clock.set(evening("2024-06-14"))  # the 4:1 split was effective on 2024-06-10
        assert fetch(run_script, sim, stale, "2024-06-10", "2024-06-14").code == 0
        assert fetch(run_script, sim, clean, "2024-06-03", "2024-06-14").code == 0
    truth = ground_truth("AAPL", dt.date(2024, 6, 3), dt.date(2024, 6, 14))
    after = truth["ts_open_ns"] >= dt.datetime(2024, 6, 10, tzinfo=NY).timestamp() * 1e9
    one_scale, cliff = Catalog(clean).read(BT), Catalog(stale).read(BT)
    np.testing.assert_array_equal(one_scale.ts_event, truth["ts_open_ns"] + MINUTE)
    for key in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(one_scale, key), scaled(truth, 4, key), err_msg=key)
        stale_truth = np.where(after, scaled(truth, 4, key), scaled(truth, 1, key))
        np.testing.assert_array_equal(getattr(cliff, key), stale_truth, err_msg=key)

    def split_findings(root):
        r = run_script("scan", f"catalog.path={root}", "symbol=AAPL", "format=json")
        assert r.code == 0, r.stderr
        return [h for h in json.loads(r.stdout)["health"] if h["kind"] == "possible_split"]

    (found,) = split_findings(stale)
    assert "possible split on 2024-06-10 (ratio 4:1" in found["message"]
    assert split_findings(clean) == []


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

"""Daily mark-to-market equity and risk numbers (ntrader.backtest.performance)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from ntrader.backtest.performance import Fill, _position_path, risk_metrics, session_closes

from .backtest_fixtures import make_catalog, run_engine


def test_risk_metrics_by_hand():
    eq = pd.Series([101.0, 99.99, 102.9999, 102.9999])
    r = np.array([0.01, 99.99 / 101 - 1, 102.9999 / 99.99 - 1, 0.0])
    m = risk_metrics(eq, 100.0)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), rel=1e-12)
    down = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert m["sortino"] == pytest.approx(r.mean() / down * math.sqrt(252), rel=1e-12)
    assert m["max_drawdown_pct"] == pytest.approx((1 - 99.99 / 101) * 100, rel=1e-12)
    assert m["sessions"] == 4
    flat = risk_metrics(pd.Series([100.0, 100.0]), 100.0)
    assert flat["sharpe"] is None and flat["max_drawdown_pct"] == 0.0


def test_position_path_netting_semantics():
    fills = [
        Fill(1, "X", 100, 10.0),
        Fill(2, "X", 100, 12.0),
        Fill(3, "X", -50, 13.0),
        Fill(4, "X", -250, 9.0),
        Fill(5, "X", 100, 8.0),
    ]
    t, q, avg = _position_path(fills, margin=True)
    assert t.tolist() == [1, 2, 3, 4, 5]
    assert q.tolist() == [100, 200, 150, -100, 0]
    assert avg.tolist() == [10.0, 11.0, 11.0, 9.0, 0.0]  # add averages, reduce keeps, flip resets


def test_session_closes_take_each_sessions_last_bar():
    ts = pd.DatetimeIndex(
        ["2024-01-02 20:59", "2024-01-02 21:00", "2024-01-03 14:31", "2024-01-03 21:00"], tz="UTC"
    ).asi8
    t, c = session_closes(ts, np.array([1.0, 2.0, 3.0, 4.0]), "America/New_York")
    assert t.tolist() == [ts[1], ts[3]] and c.tolist() == [2.0, 4.0]


def test_daily_equity_ends_at_the_ending_balance(tmp_path):
    from ntrader.backtest.performance import daily_equity

    catalog, bt = make_catalog(tmp_path / "c", start=dt.date(2024, 1, 2), end=dt.date(2024, 1, 31))
    engine, venue = run_engine(catalog, bt, run_analysis=False)
    frame = catalog.read(bt)
    eq = daily_equity(engine, venue, {str(bt.instrument_id): (frame.ts_event, frame.close)})
    assert len(eq) == 21  # sessions of January 2024
    ending = engine.portfolio.account(venue).balance_total().as_double()
    assert eq.iloc[-1] == pytest.approx(ending, abs=1e-6)  # flat at the end (closed on stop)
    assert eq.min() > 90_000 and eq.max() < 110_000  # marked to market, not cash-only

"""The fast statistics path leaves PortfolioAnalyzer exactly as ``calculate_statistics`` does."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.currencies import EUR, USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import PositionId, Venue
from nautilus_trader.model.objects import Money

from ntrader.backtest.analysis import (
    FastTradeRecorder,
    calculate_statistics_fast,
    ensure_statistics,
    install_fast_recorder,
    stats_equal,
    venue_account,
    venue_positions,
)
from ntrader.catalog.catalog import Catalog
from tests.backtest_fixtures import build_engine, make_catalog

START = dt.date(2024, 3, 1)
# MARGIN re-evaluates every open position per event (3x slower here): a shorter range for it.
END = {"CASH": dt.date(2024, 3, 28), "MARGIN": dt.date(2024, 3, 14)}
# Same seed, different price levels: the EMA crosses land on the same bars for every symbol, but
# 2-decimal rounding makes each symbol's realized returns differ, so several positions with
# different returns close at one timestamp and the summation order matters.
SYMBOLS = (("AAPL", 180.0), ("MSFT", 41.37), ("NVDA", 733.0))

STATE_SERIES_DICTS = (
    "_realized_pnls",
    "_realized_pnl_timestamps",
    "_recorded_realized_pnls",
    "_recorded_realized_pnl_timestamps",
)
STATE_SERIES = ("_position_returns", "_portfolio_returns", "_returns")


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Catalog, list[BarType]]]:
    out = {}
    for account, end in END.items():
        root: Path = tmp_path_factory.mktemp(f"fast-{account}") / "catalog"
        bar_types = []
        for symbol, price in SYMBOLS:
            catalog, bar_type = make_catalog(root, symbol, START, end, seed=7, start_price=price)
            bar_types.append(bar_type)
        out[account] = (catalog, bar_types)
    return out


@pytest.fixture(scope="module")
def reference_runs(catalogs) -> Callable[[str, str], tuple[BacktestEngine, Venue]]:
    """Engines run with run_analysis=True, one per (strategy, account), shared by tests."""
    cache: dict[tuple[str, str], tuple[BacktestEngine, Venue]] = {}

    def get(strategy: str, account: str) -> tuple[BacktestEngine, Venue]:
        if (strategy, account) not in cache:
            catalog, bar_types = catalogs[account]
            engine, venue = build_engine(
                catalog, bar_types, run_analysis=True, strategy=strategy, account=account
            )
            engine.run()
            cache[strategy, account] = (engine, venue)
        return cache[strategy, account]

    return get


def _stats(analyzer: PortfolioAnalyzer) -> tuple[dict[str, Any], ...]:
    return (
        analyzer.get_performance_stats_pnls(),
        analyzer.get_performance_stats_returns(),
        analyzer.get_performance_stats_general(),
    )


def _assert_same_state(ref: dict[str, Any], fast: PortfolioAnalyzer) -> None:
    assert ref["_account_balances_starting"] == fast._account_balances_starting
    assert ref["_account_balances"] == fast._account_balances
    assert [p.id for p in ref["_positions"]] == [p.id for p in fast._positions]
    for name in STATE_SERIES_DICTS:
        assert list(ref[name]) == list(getattr(fast, name)), name
        for currency, series in ref[name].items():
            pd.testing.assert_series_equal(
                getattr(fast, name)[currency], series, check_exact=True, obj=name
            )
    for name in STATE_SERIES:
        pd.testing.assert_series_equal(getattr(fast, name), ref[name], check_exact=True, obj=name)
        assert type(getattr(fast, name).index) is type(ref[name].index), name


def _snapshot(analyzer: PortfolioAnalyzer) -> dict[str, Any]:
    names = (
        "_account_balances_starting",
        "_account_balances",
        "_positions",
        *STATE_SERIES_DICTS,
        *STATE_SERIES,
    )
    return {name: getattr(analyzer, name) for name in names}


@pytest.mark.parametrize(("strategy", "account"), [("long_only", "CASH"), ("ema_cross", "MARGIN")])
def test_fast_path_matches_reference(catalogs, reference_runs, strategy: str, account: str) -> None:
    catalog, bar_types = catalogs[account]
    ref_engine, venue = reference_runs(strategy, account)
    ref = ref_engine.portfolio.analyzer
    ref_stats = _stats(ref)

    fast_engine, fast_venue = build_engine(
        catalog, bar_types, run_analysis=False, strategy=strategy, account=account
    )
    recorder = install_fast_recorder(fast_engine)
    fast_engine.run()
    fast = fast_engine.portfolio.analyzer
    # run_analysis=False really skipped the analysis: nothing calculated yet.
    assert fast._account_balances == {}
    assert fast._position_returns.empty
    ensure_statistics(fast_engine, fast_venue)

    # The dataset is what the test claims: a few hundred positions, many closing together.
    positions = venue_positions(ref_engine, venue)
    closes = Counter(p.ts_closed for p in positions if p.ts_closed > 0)
    assert 200 <= len(positions) <= 2000, len(positions)
    assert recorder.recorded == sum(closes.values())
    shared = [ts for ts, n in closes.items() if n >= 3]
    assert len(shared) >= 20, f"only {len(shared)} timestamps with >= 3 closes"
    assert len(ref.position_returns()) == len(closes) < len(positions)

    fast_stats = _stats(fast)
    assert stats_equal(fast_stats, ref_stats), (fast_stats, ref_stats)
    assert len(ref_stats[0]) > 2 and len(ref_stats[1]) > 2 and ref_stats[2]
    pd.testing.assert_series_equal(fast.realized_pnls(), ref.realized_pnls(), check_exact=True)
    for getter in ("returns", "position_returns", "portfolio_returns"):
        pd.testing.assert_series_equal(
            getattr(fast, getter)(), getattr(ref, getter)(), check_exact=True, obj=getter
        )
    # Recorded (during-run) PnLs carry run-independent position ids: equal across the two runs.
    for name in ("_recorded_realized_pnls", "_recorded_realized_pnl_timestamps"):
        assert list(getattr(fast, name)) == list(getattr(ref, name)) == [USD]
        pd.testing.assert_series_equal(
            getattr(fast, name)[USD], getattr(ref, name)[USD], check_exact=True
        )

    # Same engine, same position objects: every private field the getters read is identical
    # (snapshot position ids carry random UUIDs, so this part compares within one run).
    reference_state = _snapshot(ref)
    calculate_statistics_fast(ref, venue_account(ref_engine, venue), positions)
    _assert_same_state(reference_state, ref)
    assert stats_equal(_stats(ref), ref_stats)


def test_summation_order_is_the_references(reference_runs) -> None:
    """Bit-identity is not luck: a different order of the same returns sums differently."""
    engine, venue = reference_runs("long_only", "CASH")
    ensure_statistics(engine, venue)
    positions = venue_positions(engine, venue)
    reference = engine.portfolio.analyzer.position_returns()

    reordered = PortfolioAnalyzer()
    calculate_statistics_fast(reordered, venue_account(engine, venue), positions[::-1])
    differing = (reordered.position_returns() != reference).sum()
    assert differing > 0  # order matters for these floats ...
    calculate_statistics_fast(reordered, venue_account(engine, venue), positions)
    pd.testing.assert_series_equal(reordered.position_returns(), reference, check_exact=True)


def test_fast_path_without_positions_matches_reference(tmp_path: Path) -> None:
    # One session is shorter than the slow EMA: no orders, no positions, empty return series.
    catalog, bar_type = make_catalog(
        tmp_path / "c", "AAPL", dt.date(2024, 3, 1), dt.date(2024, 3, 1)
    )
    ref_engine, _ = build_engine(
        catalog, bar_type, run_analysis=True, fast_ema_period=100, slow_ema_period=500
    )
    ref_engine.run()
    fast_engine, venue = build_engine(
        catalog, bar_type, run_analysis=False, fast_ema_period=100, slow_ema_period=500
    )
    fast_engine.run()
    ensure_statistics(fast_engine, venue)
    ref, fast = ref_engine.portfolio.analyzer, fast_engine.portfolio.analyzer
    assert venue_positions(fast_engine, venue) == []
    assert stats_equal(_stats(fast), _stats(ref))
    assert _stats(fast)[0]["PnL (total)"] == 0.0
    _assert_same_state(_snapshot(ref), fast)
    assert fast.realized_pnls() is None and ref.realized_pnls() is None


def test_recorder_matches_record_trade_including_reads_between_records() -> None:
    ref, fast = PortfolioAnalyzer(), PortfolioAnalyzer()
    recorder = FastTradeRecorder(fast).install()
    rng = np.random.default_rng(3)
    for i in range(300):
        currency = USD if rng.random() < 0.8 else EUR
        pid = PositionId(f"P-{i % 37}")
        pnl = Money(round(float(rng.normal(0, 50)), 2), currency)
        ts = None if i % 11 == 0 else int(rng.integers(1, 2**62))
        ref.record_trade(pid, pnl, ts)
        fast.record_trade(pid, pnl, ts)
        if i % 97 == 0:  # a strategy reading stats mid-run sees every record so far
            pd.testing.assert_series_equal(fast.realized_pnls(USD), ref.realized_pnls(USD))
    assert recorder.recorded == 300
    for currency in (USD, EUR):
        pd.testing.assert_series_equal(
            fast.realized_pnls(currency), ref.realized_pnls(currency), check_exact=True
        )
    recorder.flush()
    for name in ("_recorded_realized_pnls", "_recorded_realized_pnl_timestamps"):
        assert list(getattr(fast, name)) == list(getattr(ref, name))
        for currency, series in getattr(ref, name).items():
            pd.testing.assert_series_equal(getattr(fast, name)[currency], series, check_exact=True)
    assert any(v is None for v in ref._recorded_realized_pnl_timestamps[USD])

    # reset() drops pending records too; uninstall() restores the class methods.
    fast.record_trade(PositionId("P-x"), Money(1, USD), 5)
    fast.reset()
    assert fast.realized_pnls() is None
    recorder.uninstall()
    assert "record_trade" not in fast.__dict__ and "realized_pnls" not in fast.__dict__
    assert FastTradeRecorder.installed_on(fast) is None


def test_stats_equal_is_strict() -> None:
    nan = math.nan
    assert stats_equal({"a": nan, "b": 1.0}, {"a": nan, "b": 1.0})
    assert not stats_equal({"a": nan}, {"a": 0.0})
    assert not stats_equal({"a": 1.0}, {"a": 1.0 + 1e-15})
    assert not stats_equal({"a": 1}, {"a": 1.0})
    assert not stats_equal({"a": 1.0}, {"a": 1.0, "b": 2.0})

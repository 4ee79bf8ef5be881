"""The NautilusTrader workarounds change no result (``ntrader.backtest.nautilus_fixes``).

A NETTING multi-symbol run is done twice on the same data — plain ``engine.run()`` and inside
``snapshot_unpickle_memo`` (what ``run_engine`` does) — and every report must be equal; the memo
must also have been used (each snapshot decoded through it exactly once).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ntrader.backtest.data import check_and_load
from ntrader.backtest.engine import build_engine
from ntrader.backtest.nautilus_fixes import snapshot_unpickle_memo
from ntrader.backtest.spec import BacktestSpec, StrategySpec, VenueSpec

from .backtest_fixtures import make_catalog

EMA = "nautilus_trader.examples.strategies.ema_cross"
SYMBOLS = ["AAPL", "MSFT", "NVDA"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("netting") / "catalog"
    for i, s in enumerate(SYMBOLS):
        cat, _ = make_catalog(root, s, dt.date(2024, 1, 2), dt.date(2024, 1, 19), seed=i + 1)
    strategy = StrategySpec(
        f"{EMA}:EMACross", f"{EMA}:EMACrossConfig", {"trade_size": 10, "fast_ema_period": 5}
    )
    spec = BacktestSpec.of(
        SYMBOLS, strategy, venue=VenueSpec(account_type="MARGIN", oms_type="NETTING")
    )
    return spec, check_and_load(cat, spec)


def _reports(engine) -> dict[str, pd.DataFrame]:
    t = engine.trader
    venue = next(iter(engine.list_venues()))
    out = {
        "fills": t.generate_fills_report(),
        "positions": t.generate_positions_report(),
        "account": t.generate_account_report(venue),
    }
    for f in out.values():  # ids carry UUIDs that differ per run
        f.drop(columns=[c for c in ("event_id", "position_id") if c in f.columns], inplace=True)
        if "position_id" in (f.index.name or ""):
            f.reset_index(drop=True, inplace=True)
    return out


def test_netting_results_are_identical_with_the_snapshot_memo(loaded):
    spec, data = loaded
    plain, _ = build_engine(spec, data)
    plain.run(start=data.first_ns, end=data.last_ns)
    memo_engine, _ = build_engine(spec, data)
    with snapshot_unpickle_memo() as memo:
        memo_engine.run(start=data.first_ns, end=data.last_ns)
        decoded = len(memo)
    cache = memo_engine.cache
    snapshots = sum(len(cache.position_snapshot_bytes(p)) for p in cache.position_snapshot_ids())
    assert decoded == snapshots > 10  # the portfolio went through the memo: each decoded once
    a, b = _reports(plain), _reports(memo_engine)
    assert len(a["fills"]) > 100 and a["positions"].is_snapshot.any()  # NETTING cycles happened
    for name in a:
        pd.testing.assert_frame_equal(
            a[name].reset_index(drop=True), b[name].reset_index(drop=True), obj=name
        )
    pa, pb = plain.portfolio, memo_engine.portfolio
    for iid in data.instruments:
        assert pa.realized_pnl(iid) == pb.realized_pnl(iid)
    plain.dispose()
    memo_engine.dispose()


def test_the_memo_is_removed_after_the_block():
    import pickle

    import nautilus_trader.portfolio.portfolio as portfolio_module

    with snapshot_unpickle_memo():
        assert portfolio_module.pickle.loads is not pickle.loads
    assert portfolio_module.pickle is pickle

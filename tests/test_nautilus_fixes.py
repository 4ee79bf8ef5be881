"""The NautilusTrader workarounds change no result (``ntrader.backtest.nautilus_fixes``).

A NETTING multi-symbol run is done on the same data as NautilusTrader ships it and with each
workaround — the kept snapshot counters (what ``run_engine`` does) and the unpickle memo (the
fallback) — and every report must be equal, and so must the realized PnL of every instrument that
an actor asks the portfolio for on every bar (each question runs the method the fix changes);
the fix must also have been active: each snapshot unpickled exactly once, where the shipped
portfolio unpickles them again and again.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.actor import Actor

from ntrader.backtest import nautilus_fixes
from ntrader.backtest.data import check_and_load
from ntrader.backtest.engine import build_engine, run_engine
from ntrader.backtest.nautilus_fixes import (
    SnapshotCountersCache,
    keep_snapshot_counters,
    snapshot_unpickle_memo,
)
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


class PnlProbe(Actor):
    """Asks the portfolio for every instrument's realized PnL on every bar."""

    def __init__(self, bar_types, instrument_ids) -> None:
        super().__init__()
        self.bar_types, self.instrument_ids, self.seen = list(bar_types), list(instrument_ids), []
        self.bars = 0

    def on_start(self) -> None:
        for bt in self.bar_types:
            self.subscribe_bars(bt)

    def on_bar(self, bar) -> None:
        self.bars += 1
        if self.bars % 30:  # the shipped portfolio re-reads every snapshot for each question
            return
        pnls = tuple(str(self.portfolio.realized_pnl(i)) for i in self.instrument_ids)
        self.seen.append((bar.ts_event, str(bar.bar_type), pnls))


class CountingPickle:
    """The portfolio module's ``pickle``, counting ``loads``."""

    def __init__(self) -> None:
        import pickle

        self.pickle, self.loads_calls = pickle, 0

    def __getattr__(self, name):
        return getattr(self.pickle, name)

    def loads(self, data):
        self.loads_calls += 1
        return self.pickle.loads(data)


def _probed_run(spec, data, monkeypatch, *, fixes: bool):
    import nautilus_trader.portfolio.portfolio as portfolio_module

    engine, _ = build_engine(spec, data, fixes=fixes)
    probe = PnlProbe(data.sources, data.instruments)
    engine.add_actor(probe)
    counting = CountingPickle()
    monkeypatch.setattr(portfolio_module, "pickle", counting)
    run_engine(engine, data)
    monkeypatch.undo()
    cache = engine.cache
    snapshots = sum(len(cache.position_snapshot_bytes(p)) for p in cache.position_snapshot_ids())
    return engine, probe.seen, counting.loads_calls, snapshots


def test_netting_results_are_identical_with_the_kept_snapshot_counters(loaded, monkeypatch):
    spec, data = loaded
    plain, plain_seen, plain_loads, snapshots = _probed_run(spec, data, monkeypatch, fixes=False)
    fixed, fixed_seen, fixed_loads, fixed_snapshots = _probed_run(
        spec, data, monkeypatch, fixes=True
    )
    assert type(plain.cache) is Cache and type(fixed.cache) is SnapshotCountersCache
    assert snapshots == fixed_snapshots > 10  # NETTING cycles happened, the same ones
    assert fixed_loads == snapshots  # the fix was active: each snapshot unpickled once ...
    assert plain_loads > 5 * snapshots  # ... where the shipped portfolio re-reads them
    assert len(plain_seen) == data.bar_count // 30 > 300
    assert fixed_seen == plain_seen  # every realized PnL the portfolio answered, bar by bar
    assert any(p != "0.00 USD" for _, _, pnls in plain_seen for p in pnls)
    a, b = _reports(plain), _reports(fixed)
    for name in a:
        pd.testing.assert_frame_equal(
            a[name].reset_index(drop=True), b[name].reset_index(drop=True), obj=name
        )
    plain.dispose()
    fixed.dispose()


def test_the_fix_is_only_built_for_netting_over_several_instruments(loaded):
    import dataclasses

    spec, data = loaded
    hedging = dataclasses.replace(spec, venue=dataclasses.replace(spec.venue, oms_type="HEDGING"))
    engine, _ = build_engine(hedging, data)
    assert type(engine.cache) is Cache  # a Python subclass makes every cache call dearer
    with keep_snapshot_counters(engine) as how:
        assert how == "none"
    engine.dispose()


def test_another_nautilus_release_falls_back_to_the_memo(loaded, monkeypatch):
    spec, data = loaded
    engine, _ = build_engine(spec, data)
    monkeypatch.setattr(nautilus_fixes, "VERIFIED_VERSION", "0.0.0")
    with keep_snapshot_counters(engine) as how:
        assert how == "memo"
        assert engine.cache.restore is None
    monkeypatch.undo()
    with keep_snapshot_counters(engine) as how:
        assert how == "counters" and engine.cache.restore is not None
    assert engine.cache.restore is None  # scoped to one run
    engine.dispose()


def test_netting_results_are_identical_with_the_snapshot_memo(loaded):
    spec, data = loaded
    plain, _ = build_engine(spec, data, fixes=False)
    plain.run(start=data.first_ns, end=data.last_ns)
    memo_engine, _ = build_engine(spec, data, fixes=False)
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

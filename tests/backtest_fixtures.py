"""Shared helpers for backtest tests: a small real catalog of RTH minute bars, and an engine run.

``make_catalog`` writes a random walk of valid OHLC 1-minute bars on real XNYS session closes
(holidays and early closes included) through :class:`ntrader.catalog.Catalog`; ``run_engine``
builds a ``BacktestEngine`` the way the backtest script does (one venue, NETTING, USD 100k,
Nautilus logging at ERROR, no historical-bar requests) and runs an example EMA strategy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import FixedFeeModel
from nautilus_trader.config import ImportableStrategyConfig, LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.trading.config import StrategyFactory

from ntrader.backtest.analysis import install_fast_recorder
from ntrader.catalog.barframe import random_walk_frame
from ntrader.catalog.catalog import Catalog
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.sessions import expected_bar_closes, sessions_between

MINUTE_NS = 60_000_000_000
STARTING_USD = 100_000

_STRATEGIES = {
    "long_only": "nautilus_trader.examples.strategies.ema_cross_long_only:EMACrossLongOnly",
    "ema_cross": "nautilus_trader.examples.strategies.ema_cross:EMACross",
}


def make_catalog(
    root: str | Path,
    symbol: str = "AAPL",
    start: dt.date = dt.date(2024, 1, 2),
    end: dt.date = dt.date(2024, 1, 31),
    seed: int = 1,
    *,
    start_price: float = 180.0,
) -> tuple[Catalog, BarType]:
    """Write RTH 1-minute bars of ``symbol`` for every XNYS session in ``[start, end]``.

    ``root`` may already hold other symbols: calling this twice with one root builds a
    multi-instrument catalog (same ``seed`` -> identical prices, handy for simultaneous fills).
    """
    sessions = sessions_between("XNYS", start, end)
    closes = expected_bar_closes(sessions, MINUTE_NS)
    iid = resolve_instrument_id(symbol)
    bar_type = bar_type_for(iid, "1-MINUTE-LAST")
    catalog = Catalog(root)
    catalog.write_bars(
        bar_type,
        random_walk_frame(closes, seed=seed, start_price=start_price),
        instrument=make_equity(iid, 2),
    )
    return catalog, bar_type


def build_engine(
    catalog: Catalog,
    bar_types: BarType | Sequence[BarType],
    *,
    run_analysis: bool,
    strategy: str = "long_only",
    account: str = "CASH",
    trade_size: str = "100",
    fast_ema_period: int = 10,
    slow_ema_period: int = 20,
    commission: float | None = None,
) -> tuple[BacktestEngine, Venue]:
    """An engine loaded with the catalog's bars and one strategy per bar type (not yet run).

    ``commission``: a fixed USD fee per order (Nautilus ``FixedFeeModel``); default no fees.
    """
    if strategy not in _STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {sorted(_STRATEGIES)}")
    if account not in ("CASH", "MARGIN"):
        raise ValueError(f"unknown account {account!r}; use CASH or MARGIN")
    types = [bar_types] if isinstance(bar_types, BarType) else list(bar_types)
    venue = types[0].instrument_id.venue
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("BACKTESTER-001"),
            logging=LoggingConfig(log_level="ERROR"),
            run_analysis=run_analysis,
        )
    )
    engine.add_venue(
        Venue(venue.value),
        oms_type=OmsType.NETTING,
        account_type=AccountType[account],
        base_currency=USD,
        starting_balances=[Money(STARTING_USD, USD)],
        fee_model=FixedFeeModel(Money(commission, USD)) if commission else None,
    )
    path = _STRATEGIES[strategy]
    for bar_type in types:
        iid = bar_type.instrument_id
        instrument = catalog.instrument(iid)
        if instrument is None:
            raise ValueError(f"catalog {catalog.root} holds no instrument {iid}")
        engine.add_instrument(instrument)
        engine.add_data(catalog.read_bars(bar_type))
        params: dict[str, Any] = {
            "instrument_id": str(iid),
            "bar_type": str(bar_type),
            "trade_size": trade_size,
            "fast_ema_period": fast_ema_period,
            "slow_ema_period": slow_ema_period,
        }
        if strategy == "long_only":
            params["request_historical_bars"] = False
        else:
            params.update(request_bars=False, subscribe_trade_ticks=False)
        cfg = ImportableStrategyConfig(
            strategy_path=path,
            config_path=path + "Config",
            config=params,
        )
        engine.add_strategy(StrategyFactory.create(cfg))
    return engine, venue


def run_engine(
    catalog: Catalog,
    bar_type: BarType | Sequence[BarType],
    *,
    run_analysis: bool,
    strategy: str = "long_only",
    account: str = "CASH",
    fast_recorder: bool = False,
    **kwargs: Any,
) -> tuple[BacktestEngine, Venue]:
    """Build (see :func:`build_engine`) and run an engine; returns it with its venue.

    ``fast_recorder``: replace the analyzer's per-trade ``record_trade`` with
    :class:`ntrader.backtest.analysis.FastTradeRecorder` for the run.
    """
    engine, venue = build_engine(
        catalog, bar_type, run_analysis=run_analysis, strategy=strategy, account=account, **kwargs
    )
    if fast_recorder:
        install_fast_recorder(engine)
    engine.run()
    return engine, venue

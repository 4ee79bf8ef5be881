"""OpeningRange on a real BacktestEngine over a real catalog of shaped 1-minute bars.

Sessions (XNYS, 2024; 11-28 is Thanksgiving, 11-29 closes at 13:00):

* 11-25 breakout at 10:16, held to the 15:55 exit; pre-market bars must not widen the range;
* 11-26 no breakout: a wick above the range (close inside), a spike after the exit time and
  post-market bars above the range all stay flat;
* 11-27 breakout at 10:31, stop-out at 11:01, a second breakout at 11:31 is not taken;
* 11-29 early close: breakout at 10:11, exit at 12:55 (5 minutes before the 13:00 close);
* 12-02 breakout at 10:06, then no bars after 14:59: the exit alert still fires at 15:55;
* 12-03 no breakout, prices drift down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import yaml
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.trading.config import ImportableStrategyConfig, StrategyFactory

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.sessions import expected_bar_closes, sessions_between

from .conftest import REPO

MINUTE = 60_000_000_000
NY = "America/New_York"
CONF = yaml.safe_load((REPO / "conf" / "strategy" / "opening_range.yaml").read_text())
RANGE_HIGH, RANGE_LOW = 100.50, 99.50  # every opening-range bar (09:31 .. 10:00) spans this


@dataclass
class Day:
    """How one session's bars are shaped: a flat 100.00 with steps, wicks and extra hours."""

    steps: dict[str, float]  # bar close time (NY) -> close from then on
    wicks: dict[str, tuple[float, float]] = field(default_factory=dict)  # time -> (close, high)
    pre_market: float | None = None  # 08:01 .. 09:30 bars at this close
    post_market: float | None = None  # 16:01 .. 17:00 bars at this close
    last_bar: str | None = None  # no bars after this time (a data gap up to the next session)


DAYS = {
    dt.date(2024, 11, 25): Day({"10:16": 101.00, "15:55": 101.20}, pre_market=102.00),
    dt.date(2024, 11, 26): Day(
        {}, wicks={"11:11": (100.00, 101.50), "15:56": (105.00, 105.00)}, post_market=105.00
    ),
    dt.date(2024, 11, 27): Day({"10:31": 101.00, "11:01": 99.00, "11:31": 102.00}),
    dt.date(2024, 11, 29): Day({"10:11": 101.00}),  # early close 13:00
    dt.date(2024, 12, 2): Day({"10:06": 101.00, "14:00": 100.80}, last_bar="14:59"),
    dt.date(2024, 12, 3): Day({"10:31": 99.90, "13:00": 99.70}),
}


def ny(date: dt.date, hhmm: str) -> int:
    """UTC ns of ``hhmm`` New York time on ``date``."""
    return int(pd.Timestamp(f"{date} {hhmm}", tz=NY).tz_convert("UTC").value)


def day_bars(date: dt.date, day: Day) -> BarFrame:
    session = sessions_between("XNYS", date, date)
    ts = expected_bar_closes(session, MINUTE, "regular")  # 09:31 .. close, real bar closes
    open_ns = int(session.open_ns[0])
    if day.pre_market is not None:
        ts = np.r_[open_ns - np.arange(89, -1, -1, dtype=np.int64) * MINUTE, ts]
    if day.post_market is not None:
        close_ns = int(session.close_ns[0])
        ts = np.r_[ts, close_ns + np.arange(1, 61, dtype=np.int64) * MINUTE]
    close = np.full(len(ts), 100.00)
    close[ts <= open_ns] = day.pre_market or 100.00
    for hhmm, price in sorted(day.steps.items()):
        close[ts >= ny(date, hhmm)] = price
    if day.post_market is not None:
        close[-60:] = day.post_market
    o = np.r_[close[0], close[:-1]]
    high, low = np.maximum(o, close) + 0.05, np.minimum(o, close) - 0.05
    in_range = (ts > open_ns) & (ts <= open_ns + 30 * MINUTE)
    o[in_range], close[in_range] = 100.00, 100.00
    high[in_range], low[in_range] = RANGE_HIGH, RANGE_LOW
    for hhmm, (c, h) in day.wicks.items():
        i = int(np.searchsorted(ts, ny(date, hhmm)))
        close[i], high[i] = c, h
    keep = ts <= (ny(date, day.last_bar) if day.last_bar else ts[-1])
    cols = [np.round(a[keep], 2) for a in (o, high, low, close)]
    return BarFrame(ts[keep], *cols, np.full(int(keep.sum()), 1000.0), 2, 0)


Fill = tuple[OrderSide, int, float, Decimal]  # side, ts_event, price, quantity


@pytest.fixture(scope="module")
def orb_catalog(tmp_path_factory) -> Catalog:
    catalog = Catalog(tmp_path_factory.mktemp("orb") / "catalog")
    iid = resolve_instrument_id("AAPL")
    frame = BarFrame.concat([day_bars(d, day) for d, day in DAYS.items()])
    catalog.write_bars(bar_type_for(iid, "1-MINUTE-LAST"), frame, instrument=make_equity(iid, 2))
    return catalog


@pytest.fixture(scope="module")
def fills(orb_catalog) -> list[Fill]:
    return run(orb_catalog)


def run(catalog: Catalog, **overrides) -> list[Fill]:
    """Run the strategy from its yaml (params + ``overrides``) over all DAYS; every fill."""
    iid = resolve_instrument_id("AAPL")
    bar_type = bar_type_for(iid, "1-MINUTE-LAST")

    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("BACKTESTER-001"), logging=LoggingConfig(log_level="ERROR")
        )
    )
    engine.add_venue(
        Venue("NASDAQ"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(100_000, USD)],
    )
    engine.add_instrument(catalog.instrument(iid))
    engine.add_data(catalog.read_bars(bar_type))
    params = {**CONF["params"], **overrides}
    config = ImportableStrategyConfig(
        strategy_path=CONF["path"],
        config_path=CONF["config_path"],
        config={**params, "instrument_id": str(iid), "bar_type": str(bar_type)},
    )
    engine.add_strategy(StrategyFactory.create(config))
    engine.run()
    try:
        assert engine.cache.positions_open_count() == 0
        events = [e for o in engine.cache.orders() for e in o.events if isinstance(e, OrderFilled)]
        return [
            (e.order_side, e.ts_event, float(e.last_px), e.last_qty.as_decimal())
            for e in sorted(events, key=lambda e: e.ts_event)
        ]
    finally:
        engine.dispose()


def session_of(ts: int) -> dt.date:
    return pd.Timestamp(ts - 1, tz="UTC").tz_convert(NY).date()


def test_entries_on_the_breakout_bar_close_once_per_session(fills):
    buys = [(ts, px, qty) for side, ts, px, qty in fills if side == OrderSide.BUY]
    # A market order fills at once (no latency model) at the close of the breakout bar,
    # stamped with that bar's ts_event (= its close time).
    assert buys == [
        (ny(dt.date(2024, 11, 25), "10:16"), 101.00, Decimal(100)),
        (ny(dt.date(2024, 11, 27), "10:31"), 101.00, Decimal(100)),
        (ny(dt.date(2024, 11, 29), "10:11"), 101.00, Decimal(100)),
        (ny(dt.date(2024, 12, 2), "10:06"), 101.00, Decimal(100)),
    ]
    # no entry on 11-26 (wick, post-exit spike, post-market) nor 12-03 (no breakout); no
    # re-entry after the stop on 11-27; pre-market bars of 11-25 did not widen its range.


def test_exits_stop_and_before_each_close(fills):
    sells = [(ts, px, qty) for side, ts, px, qty in fills if side == OrderSide.SELL]
    assert sells == [
        # 5 min before 16:00, at the close of the bar closing then (the 15:55 bar comes first)
        (ny(dt.date(2024, 11, 25), "15:55"), 101.20, Decimal(100)),
        (ny(dt.date(2024, 11, 27), "11:01"), 99.00, Decimal(100)),  # stop: close < 99.50
        (ny(dt.date(2024, 11, 29), "12:55"), 101.00, Decimal(100)),  # early close 13:00
        # no bars after 14:59: the exit alert still fires, at the last close (14:59's)
        (ny(dt.date(2024, 12, 2), "15:55"), 100.80, Decimal(100)),
    ]


def test_flat_at_every_session_close(fills):
    for date in DAYS:
        close_ns = int(sessions_between("XNYS", date, date).close_ns[0])
        held = sum(
            (1 if side == OrderSide.BUY else -1) * qty
            for side, ts, _, qty in fills
            if ts <= close_ns
        )
        assert held == 0, f"long {held} at the {date} close"
    for side, ts, _, _ in fills:  # every fill inside regular hours of its own session
        session = sessions_between("XNYS", session_of(ts), session_of(ts))
        assert int(session.open_ns[0]) < ts < int(session.close_ns[0]), (side, ts)


def test_params_from_overrides(orb_catalog):
    """range_minutes=60 (09:31 .. 10:30) takes in the 11-25, 11-29 and 12-02 steps (range high
    101.05); exit_minutes_before_close=0 allows late entries and exits on the 16:00 bar."""
    fills = run(orb_catalog, range_minutes=60, exit_minutes_before_close=0)
    nov = lambda day, hhmm: ny(dt.date(2024, 11, day), hhmm)  # noqa: E731
    buy, sell, q = OrderSide.BUY, OrderSide.SELL, Decimal(100)
    assert fills == [
        (buy, nov(25, "15:55"), 101.20, q),  # 101.20 > 101.05, before the 16:00 exit
        (sell, nov(25, "16:00"), 101.20, q),
        (buy, nov(26, "15:56"), 105.00, q),  # the late spike is now before the exit time
        (sell, nov(26, "16:00"), 100.00, q),
        (buy, nov(27, "10:31"), 101.00, q),  # after the 60-minute range
        (sell, nov(27, "11:01"), 99.00, q),  # stop
    ]

"""The backtest benchmark's bare-engine reference: NautilusTrader as its docs show it, with
NautilusTrader only — ``ParquetDataCatalog.bars`` into a ``BacktestEngine`` with the example
strategy ``EMACrossLongOnly`` (trade size 100, EMA 10/20, no historical-bar request) on a CASH,
NETTING, USD 100k account, Nautilus logging at ERROR, no fee model.

``bench/backtest_bench.py`` calls :func:`bare_engine` in-process (``run_analysis`` on or off) and
runs this file as a whole process for the whole-process rows (``run_analysis=True``, Nautilus'
default)::

    python bench/ref_backtest_bare.py CATALOG BAR_TYPE  # prints fills, pnl, ending_balance, bars
"""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.examples.strategies.ema_cross_long_only import (
    EMACrossLongOnly,
    EMACrossLongOnlyConfig,
)
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog

TRADE_SIZE, FAST, SLOW = 100, 10, 20
STARTING_USD = 100_000


def bare_engine(
    root: Any, bar_type: str, *, run_analysis: bool
) -> tuple[BacktestEngine, Venue, dict[str, float]]:
    """NautilusTrader's own path: ParquetDataCatalog -> BacktestEngine -> run. Returns the
    engine (dispose it), its venue and the seconds of its load, build and run phases."""
    bt = BarType.from_str(bar_type)
    iid = bt.instrument_id
    t0 = time.perf_counter()
    catalog = ParquetDataCatalog(str(root))
    instrument = catalog.instruments(instrument_ids=[str(iid)])[0]
    bars = catalog.bars([bar_type])
    t1 = time.perf_counter()
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("BACKTESTER-001"),
            logging=LoggingConfig(log_level="ERROR"),
            run_analysis=run_analysis,
        )
    )
    venue = Venue(iid.venue.value)
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(STARTING_USD, USD)],
    )
    engine.add_instrument(instrument)
    engine.add_data(bars)
    config = EMACrossLongOnlyConfig(
        instrument_id=iid,
        bar_type=bt,
        trade_size=Decimal(TRADE_SIZE),
        fast_ema_period=FAST,
        slow_ema_period=SLOW,
        request_historical_bars=False,
    )
    engine.add_strategy(EMACrossLongOnly(config))
    t2 = time.perf_counter()
    engine.run()  # with run_analysis=True this includes Nautilus' post-run analysis
    t3 = time.perf_counter()
    return engine, venue, {"load": t1 - t0, "build": t2 - t1, "run": t3 - t2}


def account_pnl(engine: BacktestEngine, venue: Venue) -> float:
    """Ending minus starting USD balance of the venue's account."""
    account = engine.cache.account_for_venue(venue)
    start, end = account.starting_balances()[USD], account.balances_total()[USD]
    return float(end.as_decimal() - start.as_decimal())


def fill_count(engine: BacktestEngine) -> int:
    """OrderFilled events of every order (the rows of Nautilus' fills report)."""
    return sum(1 for o in engine.cache.orders() for e in o.events if isinstance(e, OrderFilled))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    engine, venue, _ = bare_engine(argv[0], argv[1], run_analysis=True)
    balance = engine.cache.account_for_venue(venue).balances_total()[USD]
    result = {
        "fills": fill_count(engine),
        "pnl": account_pnl(engine, venue),
        "ending_balance": balance.as_double(),
        "bars": int(engine.iteration),
    }
    engine.dispose()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

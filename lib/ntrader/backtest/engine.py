"""A NautilusTrader ``BacktestEngine`` from specs and loaded data: venues with IBKR fees,
instruments before bars (the earlier implementation's Bug #9), one strategy per bar type; run it
(refusing a silent empty run) and fill the portfolio analyzer.

Bars stream into the engine (``spec.stream_chunk`` per bar type at a time): each bar type is one
of Nautilus' own data-iterator streams (``BacktestEngine.add_data_iterator``) fed by the catalog's
pinned reader, so the engine merges them by ``ts_init`` exactly as it merges one sorted list —
ties in bar-type order, as a stable sort of the bar types added one after another gives — and one
``run()`` sees every bar (timers, account errors and the end-of-run flush as in a one-shot run).
Each bar type's first bar is added and cleared first: ``add_data`` is what registers a bar type as
backtest data (else the strategy's subscription asks the data client for it again).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import Currency
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import TraderId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.trading.config import ImportableStrategyConfig, StrategyFactory

from ntrader.backtest.analysis import (
    ensure_statistics,
    install_fast_recorder,
    venue_account,
    venue_positions,
)
from ntrader.backtest.checks import account_errors
from ntrader.backtest.data import LoadedData
from ntrader.backtest.fees import IbkrFixedFeeModel
from ntrader.backtest.nautilus_fixes import counters_cache_in_kernel, keep_snapshot_counters
from ntrader.backtest.spec import BacktestSpec, StrategySpec
from ntrader.errors import InputError, SystemFailure


def _enum(enum: Any, value: str, what: str) -> Any:
    try:
        return enum[str(value).upper()]
    except KeyError:
        names = ", ".join(m.name for m in enum)
        raise InputError(f"unknown {what} {value!r}", hint=f"use one of {names}") from None


def build_engine(
    spec: BacktestSpec, data: LoadedData, *, fixes: bool = True
) -> tuple[BacktestEngine, list[Venue]]:
    """The engine for ``spec`` over ``data``; ``fixes=False`` builds it without the NETTING
    snapshot fix (:mod:`ntrader.backtest.nautilus_fixes`), as NautilusTrader ships it."""
    logging = LoggingConfig(
        log_level=spec.log_level.upper(),
        log_level_file=spec.log_level_file.upper()
        if spec.log_dir and spec.log_level_file
        else None,
        log_directory=str(spec.log_dir) if spec.log_dir else None,
        log_file_name="nautilus" if spec.log_dir else None,
        log_colors=False,
    )
    v = spec.venue
    account_type = _enum(AccountType, v.account_type, "account type")
    oms_type = _enum(OmsType, v.oms_type, "OMS type")
    netting_several = oms_type == OmsType.NETTING and len(data.instruments) > 1
    with counters_cache_in_kernel(fixes and netting_several):
        engine = BacktestEngine(
            BacktestEngineConfig(
                trader_id=TraderId(spec.trader_id),
                logging=logging,
                run_analysis=not spec.fast_analysis,
            )
        )
    try:
        currency = Currency.from_str(v.base_currency)
    except Exception as exc:
        raise InputError(f"unknown currency {v.base_currency!r}", hint="e.g. USD") from exc
    venues = sorted({iid.venue for iid in data.instruments}, key=str)
    margin = account_type == AccountType.MARGIN
    for venue in venues:
        engine.add_venue(
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            base_currency=currency,
            starting_balances=[Money(v.starting_balance, currency)],
            default_leverage=Decimal(str(v.leverage)) if margin else None,
            fee_model=IbkrFixedFeeModel(v.fees.per_share, v.fees.minimum, v.fees.max_pct),
        )
    for inst in data.instruments.values():
        engine.add_instrument(inst)  # before its bars, or Nautilus rejects them
    add_bars(engine, data, spec.stream_chunk)
    for i, bt in enumerate(data.sources):
        engine.add_strategy(_make_strategy(spec.strategy, bt, i if len(data.sources) > 1 else None))
    if spec.fast_analysis:  # realized PnLs recorded into lists during the run, not pd.concat
        install_fast_recorder(engine)
    return engine, venues


MIN_STREAM_CHUNK = 1_000  # per bar type: smaller chunks cost time (a refill per chunk)


def stream_chunk(chunk: int, bar_types: int) -> int:
    """Bars per chunk of each bar type's stream: ``chunk`` (bars decoded at a time in all)
    shared among the bar types, but at least :data:`MIN_STREAM_CHUNK` each (or ``chunk``
    itself when smaller)."""
    return max(min(MIN_STREAM_CHUNK, chunk), chunk // max(1, bar_types))


def add_bars(engine: BacktestEngine, data: LoadedData, chunk: int) -> None:
    """Every bar type's bars: streams sharing ``chunk`` bars, or (``chunk`` 0) all up front."""
    if not chunk:
        for source in data.sources.values():
            engine.add_data(source.bars())
        return
    for source in data.sources.values():
        engine.add_data([source.first_bar()])  # registers the bar type (see the module doc)
    engine.clear_data()  # keeps the registrations, drops the bars
    each = stream_chunk(chunk, len(data.sources))
    for bt, source in data.sources.items():
        engine.add_data_iterator(f"bars:{bt}", source.chunks(each))


def _make_strategy(s: StrategySpec, bar_type: BarType, tag: int | None) -> Any:
    params = dict(s.params)
    params.update(instrument_id=str(bar_type.instrument_id), bar_type=str(bar_type))
    if tag is not None:
        params["order_id_tag"] = f"{tag:03d}"
    try:
        cfg = ImportableStrategyConfig(
            strategy_path=s.path, config_path=s.config_path, config=params
        )
        return StrategyFactory.create(cfg)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"strategy {s.path} cannot be imported: {exc}",
            hint="check strategy.path and strategy.config_path (module.path:ClassName)",
        ) from exc
    except Exception as exc:  # msgspec.ValidationError and friends: bad parameter values
        raise InputError(
            f"strategy config for {s.path} is invalid: {exc}",
            hint=f"check strategy.params against {s.config_path}",
        ) from exc


def run_engine(engine: BacktestEngine, data: LoadedData) -> list[Exception]:
    """Run the engine over ``data``'s first to last bar (a streamed run has no bar list for
    Nautilus to take them from); returns the account errors raised during the run (the last one
    stopped it, see :mod:`ntrader.backtest.checks`)."""
    with account_errors() as errors, keep_snapshot_counters(engine):
        engine.run(start=data.first_ns, end=data.last_ns)
    if engine.iteration == 0 and not errors:  # BacktestNode would only log this
        raise SystemFailure(
            "the backtest processed 0 bars",
            hint="check the NautilusTrader log in the run folder (nautilus*.log)",
        )
    return errors


def analyse(engine: BacktestEngine, venue: Venue, *, fast: bool, only_venue: bool) -> None:
    """Fill the portfolio analyzer with ``venue``'s statistics.

    ``fast``: computed once here, identical to Nautilus' own (``ntrader.backtest.analysis``); else
    Nautilus' analyzer — which the engine already ran for a single venue at the end of ``run``.
    """
    if fast:
        ensure_statistics(engine, venue)
    elif not only_venue:
        engine.portfolio.analyzer.calculate_statistics(
            venue_account(engine, venue), venue_positions(engine, venue)
        )

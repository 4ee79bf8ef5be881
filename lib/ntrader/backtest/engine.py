"""Backtests from the catalog: check the data against the calendar, load it, build a
``BacktestEngine`` (instruments before bars — the earlier implementation's Bug #9), run, analyse.

Never a silent zero-iteration run: a missing instrument, zero bars or missing sessions are data
errors naming the missing ranges and the commands that fill them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from loguru import logger
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import Currency
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import InstrumentId, TraderId, Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money
from nautilus_trader.trading.config import ImportableStrategyConfig, StrategyFactory

from ntrader.backtest.analysis import (
    ensure_statistics,
    install_fast_recorder,
    venue_account,
    venue_positions,
)
from ntrader.backtest.fees import IbkrFixedFeeModel
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import iso
from ntrader.errors import DataError, InputError, SystemFailure
from ntrader.ibkr import nodata
from ntrader.instruments import bar_step
from ntrader.quality.checkup import fill_command
from ntrader.quality.gaps import find_gaps
from ntrader.sessions import calendar_for_venue, calendar_timezone, sessions_between


@dataclass(frozen=True)
class FeeSpec:
    per_share: float = 0.005
    minimum: float = 1.0
    max_pct: float = 1.0


@dataclass(frozen=True)
class VenueSpec:
    account_type: str = "CASH"
    oms_type: str = "NETTING"
    base_currency: str = "USD"
    starting_balance: float = 100_000.0
    leverage: float = 1.0
    fees: FeeSpec = field(default_factory=FeeSpec)


@dataclass(frozen=True)
class StrategySpec:
    path: str
    config_path: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BacktestSpec:
    bar_types: list[BarType]
    strategy: StrategySpec
    venue: VenueSpec = field(default_factory=VenueSpec)
    start: dt.date | None = None
    end: dt.date | None = None
    allow_missing_sessions: bool = False
    calendar: str | None = None
    trader_id: str = "BACKTESTER-001"
    log_level: str = "ERROR"
    log_level_file: str | None = "WARNING"
    log_dir: Path | None = None
    fast_analysis: bool = True


@dataclass
class LoadedData:
    instruments: dict[InstrumentId, Instrument]
    bars: dict[BarType, list[Bar]]
    ranges: dict[str, tuple[dt.date, dt.date]]
    closes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # iid -> (ts_event, close)
    tz: str = "America/New_York"

    @property
    def bar_count(self) -> int:
        return sum(len(b) for b in self.bars.values())


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - t0, 4)


def _date_bounds(
    start: dt.date | None, end: dt.date | None, tz: str
) -> tuple[int | None, int | None]:
    """[start, end] sessions -> inclusive ts_event bounds: a session's bars close after its local
    midnight and no later than the next one (a daily bar closes exactly at the next midnight)."""
    lo = None if start is None else pd.Timestamp(start, tz=tz).value + 1
    hi = None if end is None else (pd.Timestamp(end, tz=tz) + pd.Timedelta(days=1)).value
    return lo, hi


def check_and_load(catalog: Catalog, spec: BacktestSpec) -> LoadedData:
    """Verify every bar type's data over the range, then load instruments and bars."""
    instruments: dict[InstrumentId, Instrument] = {}
    bars: dict[BarType, list[Bar]] = {}
    ranges: dict[str, tuple[dt.date, dt.date]] = {}
    closes: dict[str, tuple[Any, Any]] = {}
    tz = "America/New_York"
    problems: list[str] = []
    commands: list[str] = []
    fetchable: list[tuple[BarType, dt.date, dt.date]] = []
    all_fetchable = True  # False once a problem has no date range IBKR could be asked for
    for bt in spec.bar_types:
        iid = bt.instrument_id
        spec_str = str(bt.spec)
        inst = catalog.instrument(iid)
        avail = catalog.availability(bt)
        if inst is None or avail.rows == 0:
            what = "instrument" if inst is None else f"{spec_str} bars"
            problems.append(f"{iid}: no {what} in catalog {catalog.url}")
            s = spec.start or "YYYY-MM-DD"
            e = spec.end or "YYYY-MM-DD"
            commands.append(f"make fetch SYMBOLS={iid} START={s} END={e} BAR={spec_str}")
            commands.append(f"make import CSV=<file> SYMBOL={iid} BAR={spec_str}")
            if spec.start and spec.end:
                fetchable.append((bt, spec.start, spec.end))
            else:
                all_fetchable = False
            continue
        cal = spec.calendar or calendar_for_venue(iid.venue.value)
        tz = calendar_timezone(cal)
        step = bar_step(bt)
        lo, hi = _date_bounds(spec.start, spec.end, tz)
        frame = catalog.read(bt, lo, hi)
        if not len(frame):
            have = (
                f"{iso(avail.first_ns, daily=step.daily)} .. {iso(avail.last_ns, daily=step.daily)}"
            )
            problems.append(
                f"{iid}: no {spec_str} bars between {spec.start or 'start'} and "
                f"{spec.end or 'end'} (the catalog has {have})"
            )
            if spec.start and spec.end:
                commands.append(fill_command(str(iid), spec.start, spec.end, spec_str))
                fetchable.append((bt, spec.start, spec.end))
            else:
                all_fetchable = False
            continue
        gaps = find_gaps(
            frame.ts_event,
            calendar=cal,
            step_ns=step.interval_ns,
            daily=step.daily,
            start=spec.start,
            end=spec.end,
        )
        ranges[str(bt)] = (gaps.start or spec.start, gaps.end or spec.end)  # type: ignore[assignment]
        known_empty = nodata.load(catalog, str(bt))  # IBKR said "no data" for these
        missing = [
            r
            for r in gaps.missing_sessions
            if not set(sessions_between(cal, r.first, r.last).date_list()) <= known_empty
        ]
        if len(missing) < len(gaps.missing_sessions):
            logger.warning(
                f"{iid}: {len(gaps.missing_sessions) - len(missing)} missing session range(s) "
                "have no data at IBKR (recorded by an earlier fetch): running without them"
            )
        if missing:
            listed = ", ".join(str(r) for r in missing[:10])
            more = len(missing) - 10
            n_missing = sum(r.sessions for r in missing)
            msg = f"{iid}: {n_missing} of {gaps.sessions_expected} sessions missing: "
            msg += listed + (f" … and {more} more ranges" if more > 0 else "")
            if spec.allow_missing_sessions:
                logger.warning(msg + " (data.allow_missing_sessions=true: running anyway)")
            else:
                problems.append(msg)
                commands += [fill_command(str(iid), r.first, r.last, spec_str) for r in missing]
                fetchable += [(bt, r.first, r.last) for r in missing]
        if not problems:
            instruments[iid] = inst
            bars[bt] = catalog.read_bars(bt, lo, hi)
            closes[str(iid)] = (frame.ts_event, frame.close)
    if problems:
        unique_cmds = list(dict.fromkeys(commands))
        raise MissingData(
            "cannot backtest:\n  " + "\n  ".join(problems),
            hint="fill the data first:\n  "
            + "\n  ".join(unique_cmds[:20])
            + (f"\n  … {len(unique_cmds) - 20} more" if len(unique_cmds) > 20 else "")
            + "\n(or data.allow_missing_sessions=true to run over the holes)",
            fetchable=fetchable,
            complete=all_fetchable,
        )
    return LoadedData(instruments, bars, ranges, closes, tz)


class MissingData(DataError):
    """The catalog lacks data a backtest needs; ``fetchable`` lists (bar type, first, last)
    session ranges IBKR could fill, ``complete`` whether they cover every problem."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        fetchable: list[tuple[BarType, dt.date, dt.date]],
        complete: bool,
    ) -> None:
        super().__init__(message, hint)
        self.fetchable = fetchable
        self.complete = complete


def _enum(enum: Any, value: str, what: str) -> Any:
    try:
        return enum[str(value).upper()]
    except KeyError:
        names = ", ".join(m.name for m in enum)
        raise InputError(f"unknown {what} {value!r}", hint=f"use one of {names}") from None


def build_engine(spec: BacktestSpec, data: LoadedData) -> tuple[BacktestEngine, list[Venue]]:
    logging = LoggingConfig(
        log_level=spec.log_level.upper(),
        log_level_file=spec.log_level_file.upper()
        if spec.log_dir and spec.log_level_file
        else None,
        log_directory=str(spec.log_dir) if spec.log_dir else None,
        log_file_name="nautilus" if spec.log_dir else None,
        log_colors=False,
    )
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId(spec.trader_id),
            logging=logging,
            run_analysis=not spec.fast_analysis,
        )
    )
    v = spec.venue
    account_type = _enum(AccountType, v.account_type, "account type")
    oms_type = _enum(OmsType, v.oms_type, "OMS type")
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
    for bars in data.bars.values():
        engine.add_data(bars)
    for i, bt in enumerate(data.bars):
        engine.add_strategy(_make_strategy(spec.strategy, bt, i if len(data.bars) > 1 else None))
    if spec.fast_analysis:  # realized PnLs recorded into lists during the run, not pd.concat
        install_fast_recorder(engine)
    return engine, venues


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


def run_engine(engine: BacktestEngine) -> None:
    engine.run()
    if engine.iteration == 0:  # BacktestNode would only log this; we refuse a silent empty run
        raise SystemFailure(
            "the backtest processed 0 bars",
            hint="check the NautilusTrader log in the run folder (nautilus*.log)",
        )


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

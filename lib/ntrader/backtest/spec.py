"""What to backtest, as typed specs: bar types, date range, strategy, venue (account, OMS,
balance, fees) and engine settings. ``from_config`` builds them from ``conf/backtest.yaml``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nautilus_trader.model.data import BarType

from ntrader.catalog.adjust import DEFAULT_VIEW, SplitDate, check_view, parse_split
from ntrader.errors import InputError
from ntrader.instruments import bar_types_for
from ntrader.sessions import parse_day


@dataclass(frozen=True)
class FeeSpec:
    """IBKR Fixed pricing: USD per share, a minimum per order, a cap in % of the trade value."""

    per_share: float = 0.005
    minimum: float = 1.0
    max_pct: float = 1.0


@dataclass(frozen=True)
class VenueSpec:
    """The simulated account at each instrument's venue (``conf/venue``)."""

    account_type: str = "CASH"
    oms_type: str = "NETTING"
    base_currency: str = "USD"
    starting_balance: float = 100_000.0
    leverage: float = 1.0
    fees: FeeSpec = field(default_factory=FeeSpec)

    @classmethod
    def from_config(cls, venue: Mapping[str, Any]) -> VenueSpec:
        """From the ``venue`` config group."""
        f = venue["fees"]
        return cls(
            account_type=str(venue["account_type"]),
            oms_type=str(venue["oms_type"]),
            base_currency=str(venue["base_currency"]),
            starting_balance=float(venue["starting_balance"]),
            leverage=float(venue["leverage"]),
            fees=FeeSpec(float(f["per_share"]), float(f["minimum"]), float(f["max_pct"])),
        )


@dataclass(frozen=True)
class RunChecks:
    """What a finished backtest must satisfy to be ``ok`` (``checks`` in conf/backtest.yaml):
    no early stop of the engine, at most ``max_rejected_pct`` % of orders rejected or denied;
    annualised ratios need ``min_sessions_for_ratios`` sessions (else they are null)."""

    allow_early_stop: bool = False
    max_rejected_pct: float = 5.0
    min_sessions_for_ratios: int = 20

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_rejected_pct <= 100.0:
            raise InputError(
                f"checks.max_rejected_pct={self.max_rejected_pct!r} is not a percentage",
                hint='use 0 .. 100, e.g. ARGS="checks.max_rejected_pct=5"',
            )
        if self.min_sessions_for_ratios < 2:
            raise InputError(
                f"checks.min_sessions_for_ratios={self.min_sessions_for_ratios!r} is below 2",
                hint="a ratio of daily returns needs at least 2 sessions",
            )

    @classmethod
    def from_config(cls, checks: Mapping[str, Any] | None) -> RunChecks:
        c = dict(checks or {})

        def num(key: str, cast: Any) -> Any:
            value = c.get(key, getattr(cls, key))
            try:
                if isinstance(value, bool):
                    raise ValueError
                return cast(value)
            except (TypeError, ValueError):
                raise InputError(
                    f"checks.{key}={value!r} is not a number",
                    hint="see `checks:` in conf/backtest.yaml",
                ) from None

        flag = c.get("allow_early_stop", False)
        if not isinstance(flag, bool):
            raise InputError(
                f"checks.allow_early_stop={flag!r} is not true/false",
                hint='ARGS="checks.allow_early_stop=true"',
            )
        return cls(flag, num("max_rejected_pct", float), num("min_sessions_for_ratios", int))


@dataclass(frozen=True)
class StrategySpec:
    """A NautilusTrader strategy by import path (``module:Class``), its config class and the
    parameters passed to it; ``instrument_id`` and ``bar_type`` are filled in per bar type."""

    path: str
    config_path: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The class name: ``EMACrossLongOnly``."""
        return self.path.rsplit(":", 1)[-1]

    @classmethod
    def from_config(cls, strategy: Mapping[str, Any]) -> StrategySpec:
        """From the ``strategy`` config group (``conf/strategy/<name>.yaml``)."""
        params = _plain(strategy.get("params") or {})
        return cls(str(strategy["path"]), str(strategy["config_path"]), params)


@dataclass(frozen=True)
class BacktestSpec:
    """One backtest: a strategy per bar type over ``start .. end`` (sessions in the exchange's
    time zone, both inclusive, either open), on one simulated account per venue.

    ``adjust`` is the price view (``none | splits | total_return``, :mod:`ntrader.catalog.adjust`;
    ``splits``: split dates for ``none``); ``allow_missing_sessions`` runs over holes in the data
    instead of refusing; ``stream_chunk``
    bars (shared by the bar types) are decoded at a time while the engine runs (0: all loaded
    up front, as Nautilus' own examples do; the same fills either way); ``log_dir`` (the run
    folder) receives NautilusTrader's own log file; ``fast_analysis`` computes Nautilus'
    statistics once at the end (identical numbers)."""

    bar_types: list[BarType]
    strategy: StrategySpec
    venue: VenueSpec = field(default_factory=VenueSpec)
    start: dt.date | None = None
    end: dt.date | None = None
    allow_missing_sessions: bool = False
    calendar: str | None = None
    stream_chunk: int = 10_000
    trader_id: str = "BACKTESTER-001"
    log_level: str = "ERROR"
    log_level_file: str | None = "WARNING"
    log_dir: Path | None = None
    fast_analysis: bool = True
    checks: RunChecks = field(default_factory=RunChecks)
    adjust: str = DEFAULT_VIEW
    splits: tuple[SplitDate, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "adjust", check_view(self.adjust))
        if not self.bar_types:
            raise InputError("no instrument to backtest", hint="pass SYMBOL=AAPL or SET=mega_caps")
        if self.start and self.end and self.start > self.end:
            raise InputError(f"START {self.start} is after END {self.end}", hint="swap them")
        chunk = self.stream_chunk
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
            raise InputError(
                f"data.stream_chunk must be a whole number of bars >= 0, not {chunk!r}",
                hint="data.stream_chunk=10000 (0 loads every bar up front)",
            )

    @property
    def names(self) -> str:
        """The bar types, comma separated (for titles and log lines)."""
        return ", ".join(str(b) for b in self.bar_types)

    @classmethod
    def of(
        cls,
        symbols: str | Iterable[str],
        strategy: StrategySpec,
        *,
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
        bar: str = "1-MINUTE-LAST",
        venue: VenueSpec | None = None,
        default_venue: str = "NASDAQ",
        venues: Mapping[str, str] | None = None,
        **engine: Any,
    ) -> BacktestSpec:
        """A spec from symbols and dates as a user types them (``"AAPL"``, ``"2024-05-01"``):
        the convenient form for notebooks. ``engine``: the other fields (``log_level`` …)."""
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        return cls(
            bar_types=bar_types_for(names, bar, default_venue, venues),
            strategy=strategy,
            venue=venue or VenueSpec(),
            start=parse_day(start, "start"),
            end=parse_day(end, "end"),
            **engine,
        )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], *, log_dir: Path | None = None) -> BacktestSpec:
        """From ``conf/backtest.yaml`` as composed by Hydra (``cfg``), or the same as a dict."""
        symbols = (
            [cfg["symbol"]] if cfg.get("symbol") else list(cfg["instruments"]["symbols"] or [])
        )
        if not symbols:
            raise InputError(
                "no instrument to backtest", hint="pass SYMBOL=AAPL, or SET=<conf/instruments set>"
            )
        inst, engine, data = cfg["instruments"], cfg["engine"], cfg["data"]
        return cls(
            bar_types=bar_types_for(
                [str(s) for s in symbols],
                str(cfg["bars"]["spec"]),
                inst["default_venue"],
                inst["venues"],
            ),
            strategy=StrategySpec.from_config(cfg["strategy"]),
            venue=VenueSpec.from_config(cfg["venue"]),
            start=parse_day(cfg["dates"]["start"], "START"),
            end=parse_day(cfg["dates"]["end"], "END"),
            allow_missing_sessions=bool(data["allow_missing_sessions"]),
            calendar=data["calendar"],
            stream_chunk=data.get("stream_chunk", 10_000),
            trader_id=str(engine["trader_id"]),
            log_level=str(engine["log_level"]),
            log_level_file=engine["log_level_file"],
            log_dir=log_dir,
            fast_analysis=bool(engine["fast_analysis"]),
            checks=RunChecks.from_config(cfg.get("checks")),
            adjust=str(data.get("adjust", DEFAULT_VIEW)),
            splits=_splits(data.get("splits")),
        )


def _splits(value: Any) -> tuple[SplitDate, ...]:
    """``data.splits``: a list of ``SYMBOL:DATE:RATIO`` (or one such string)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(_plain(value))
    return tuple(parse_split(str(v)) for v in items)


def _plain(value: Any) -> Any:
    """Config containers (Hydra's DictConfig/ListConfig, or any mapping/sequence) as plain
    dicts and lists, so that they can be handed to a strategy's config class."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value

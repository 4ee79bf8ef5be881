"""Symbols, instrument ids, bar types and the Equity instruments ntrader creates.

``SYMBOL`` is ``AAPL`` or ``AAPL.NASDAQ``: a bare symbol resolves through the configured symbol ->
venue map (``conf/instruments``), else the default venue. ``BAR`` is a Nautilus bar spec such as
``1-MINUTE-LAST``; the bar type is ``<INSTRUMENT_ID>-<BAR>-EXTERNAL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarSpecification, BarType
from nautilus_trader.model.enums import BarAggregation
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price, Quantity

from ntrader.errors import InputError
from ntrader.symbols import BarStep as BarStep  # re-exported: it used to live here
from ntrader.symbols import (
    check_bar_spec,
    check_bar_type_name,
    check_venue,
    split_instrument_id,
)

_AGGREGATION_NS = {
    BarAggregation.SECOND: 1_000_000_000,
    BarAggregation.MINUTE: 60_000_000_000,
    BarAggregation.HOUR: 3_600_000_000_000,
}
BAR_SPEC_EXAMPLES = "1-MINUTE-LAST, 5-MINUTE-LAST, 1-HOUR-LAST, 1-DAY-LAST, 1-SECOND-LAST"


def resolve_instrument_id(
    symbol: str, default_venue: str = "NASDAQ", venues: Mapping[str, str] | None = None
) -> InstrumentId:
    """``AAPL`` / ``AAPL.NASDAQ`` -> InstrumentId. Bare symbols look up ``venues`` first.

    Symbol and venue are validated by :mod:`ntrader.symbols` (InputError naming the value)."""
    ticker, venue = split_instrument_id(symbol)
    if venue is None:
        venue = check_venue((venues or {}).get(ticker) or default_venue)
    return InstrumentId(Symbol(ticker), Venue(venue))


def bar_type_for(instrument_id: InstrumentId | str, bar_spec: str) -> BarType:
    """``AAPL.NASDAQ`` + ``1-MINUTE-LAST`` -> ``AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL``."""
    spec = check_bar_spec(bar_spec)
    try:
        bar_type = BarType.from_str(f"{instrument_id}-{spec}-EXTERNAL")
    except Exception as exc:  # nautilus raises ValueError/KeyError variants
        raise InputError(
            f"invalid bar spec {bar_spec!r} ({exc})",
            hint=f"use a Nautilus bar spec such as {BAR_SPEC_EXAMPLES} (not 1-MIN)",
        ) from exc
    check_bar_type_name(bar_type)  # what the catalog will use as a directory name
    bar_step(bar_type)  # reject aggregations we cannot place on a calendar
    return bar_type


def bar_types_for(
    symbols: Iterable[str],
    bar_spec: str = "1-MINUTE-LAST",
    default_venue: str = "NASDAQ",
    venues: Mapping[str, str] | None = None,
) -> list[BarType]:
    """The bar type of each symbol (``AAPL`` or ``AAPL.NASDAQ``), resolved as SYMBOL= is."""
    return [
        bar_type_for(resolve_instrument_id(s, default_venue, venues), bar_spec) for s in symbols
    ]


def bar_step(bar_type: BarType | BarSpecification) -> BarStep:
    spec = bar_type.spec if isinstance(bar_type, BarType) else bar_type
    if spec.aggregation == BarAggregation.DAY:
        return BarStep(interval_ns=spec.step * 86_400_000_000_000, calendar_days=spec.step)
    unit = _AGGREGATION_NS.get(spec.aggregation)
    if unit is None:
        raise InputError(
            f"bar aggregation {spec} is not time-based",
            hint=f"ntrader stores time bars: {BAR_SPEC_EXAMPLES}",
        )
    return BarStep(interval_ns=spec.step * unit)


def make_equity(
    instrument_id: InstrumentId, price_precision: int, *, isin: str | None = None
) -> Equity:
    """A US-dollar Equity with a price increment of one unit at ``price_precision``."""
    increment = Price(Decimal(1).scaleb(-price_precision), price_precision)
    return Equity(
        instrument_id=instrument_id,
        raw_symbol=instrument_id.symbol,
        currency=USD,
        price_precision=price_precision,
        price_increment=increment,
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        isin=isin,
    )

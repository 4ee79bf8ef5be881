"""The price view a backtest reads (``data.adjust``), applied at load time; stored bars never
change for it.

What the catalog stores is IB's TRADES convention kept consistent: every bar in the split scale of
the latest fetch (a split found later is repaired, ``ntrader.catalog.corporate``), no dividend
adjustment. The views:

* ``splits`` (default): the bars as stored — split-adjusted, not dividend-adjusted.
* ``none``: the prices as they traded: each session before a split multiplied by its ratio (and
  its volume divided by it), for the splits ntrader recorded (a fetch found them; the date must
  be pinned) or ``data.splits`` lists (``AAPL:2024-06-10:4``). IB does not say which splits a
  history was adjusted for before ntrader first fetched it; those stay adjusted.
* ``total_return``: the stored bars multiplied by the instrument's dividend factor of their
  session (``ntrader.catalog.factors``; volumes unchanged), so a price series' returns include
  the dividends. Refused when the factors do not cover every session read.

Prices are recomputed at the instrument's precision from integer ticks (never below one tick;
high/low widened to hold open and close), as the split repair does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.codec import decode_raw, encode_column
from ntrader.catalog.corporate import load_events, ratio_label
from ntrader.catalog.factors import FactorSeries, load_factors
from ntrader.errors import DataError, InputError
from ntrader.sessions import local_dates

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog

VIEWS = ("none", "splits", "total_return")
DEFAULT_VIEW = "splits"


class MissingFactors(DataError):
    """``data.adjust=total_return`` lacks the dividend factors of sessions ``first .. last`` of
    ``instrument`` (none stored, or they do not cover them): a fetch with
    ``corporate_actions.dividends=true`` fills them."""

    def __init__(
        self, message: str, hint: str | None, *, instrument: str, first: dt.date, last: dt.date
    ) -> None:
        super().__init__(message, hint)
        self.instrument, self.first, self.last = instrument, first, last


@dataclass(frozen=True)
class SplitDate:
    """A split with its effective date (the first session traded in the new scale)."""

    symbol: str  # a symbol (``AAPL``) or an instrument id (``AAPL.NASDAQ``)
    effective: dt.date
    ratio: Fraction
    source: str = "data.splits"

    def matches(self, instrument_id: str) -> bool:
        return self.symbol.upper() in (instrument_id.upper(), instrument_id.split(".")[0].upper())

    def as_json(self) -> dict[str, Any]:
        return {
            "ratio": ratio_label(self.ratio),
            "effective_on": self.effective.isoformat(),
            "source": self.source,
        }


def parse_split(text: str) -> SplitDate:
    """``AAPL:2024-06-10:4`` (4:1) or ``AAPL:2024-06-10:1/10`` (a 1:10 reverse split)."""
    parts = str(text).strip().split(":")
    hint = 'data.splits=["AAPL:2024-06-10:4"] (symbol, first session in the new scale, ratio)'
    if len(parts) != 3:
        raise InputError(f"data.splits entry {text!r} is not SYMBOL:DATE:RATIO", hint=hint)
    symbol, day, value = parts
    try:
        when = dt.date.fromisoformat(day)
        ratio = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"data.splits entry {text!r}: bad date or ratio", hint=hint) from None
    if ratio <= 0 or not symbol or not symbol.replace(".", "").replace("-", "").isalnum():
        raise InputError(f"data.splits entry {text!r}: bad symbol or ratio", hint=hint)
    return SplitDate(symbol, when, ratio)


@dataclass(frozen=True)
class PriceView:
    """How one instrument's stored bars are shown to a backtest."""

    instrument: str
    mode: str = DEFAULT_VIEW
    splits: tuple[SplitDate, ...] = ()  # none: the splits undone
    factors: FactorSeries | None = None  # total_return

    @property
    def identity(self) -> bool:
        return (self.mode == "none" and not self.splits) or self.mode == "splits"

    def multipliers(self, sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(price, volume) multiplier of each session (``datetime64[D]``)."""
        days = np.asarray(sessions, dtype="datetime64[D]")
        price, volume = np.ones(len(days)), np.ones(len(days))
        if self.mode == "none":
            for s in self.splits:
                before = days < np.datetime64(s.effective)
                price[before] *= float(s.ratio)
                volume[before] /= float(s.ratio)
        elif self.mode == "total_return" and self.factors is not None:
            price = self.factors.factor_on(days)
            if np.isnan(price).any():
                raise DataError(f"{self.instrument}: a session outside the dividend factors")
        return price, volume

    def _price(self, values: np.ndarray, mult: np.ndarray, precision: int) -> np.ndarray:
        scale = 10.0**precision
        return np.maximum(1.0, np.rint(np.rint(values * scale) * mult)) / scale

    def apply_frame(self, frame: BarFrame, tz: str) -> BarFrame:
        """``frame`` in this view."""
        if self.identity or not len(frame):
            return frame
        price, volume = self.multipliers(local_dates(frame.ts_event - 1, tz))
        p = frame.price_precision
        o, h, lo, c = (
            self._price(getattr(frame, k), price, p) for k in ("open", "high", "low", "close")
        )
        h, lo = np.maximum.reduce([h, o, c]), np.minimum.reduce([lo, o, c])
        vol = np.round(frame.volume * volume, frame.size_precision)
        return BarFrame(frame.ts_event, o, h, lo, c, vol, p, frame.size_precision)

    def apply_closes(
        self, ts: np.ndarray, close: np.ndarray, precision: int, tz: str
    ) -> np.ndarray:
        if self.identity or not len(ts):
            return close
        price, _ = self.multipliers(local_dates(ts - 1, tz))
        return self._price(close, price, precision)

    def apply_batch(self, batch: pa.RecordBatch, tz: str) -> pa.RecordBatch:
        """A record batch in Nautilus' bar schema, in this view (``ts_init`` kept)."""
        if self.identity or not batch.num_rows:
            return batch
        meta = batch.schema.metadata or {}
        p = int(meta.get(b"price_precision", b"0"))
        sp = int(meta.get(b"size_precision", b"0"))
        cols = ("open", "high", "low", "close", "volume")
        ts = batch.column("ts_event").to_numpy().astype(np.int64)
        o, h, lo, c = (decode_raw(batch.column(k), p) for k in cols[:4])
        frame = BarFrame(ts, o, h, lo, c, decode_raw(batch.column("volume"), sp), p, sp)
        out = self.apply_frame(frame, tz)
        arrays = {k: encode_column(getattr(out, k), p) for k in cols[:4]}
        arrays["volume"] = encode_column(out.volume, sp)
        return pa.RecordBatch.from_arrays(
            [arrays.get(name, batch.column(name)) for name in batch.schema.names],
            schema=batch.schema,
        )

    def summary(self) -> dict[str, Any]:
        """What a run's summary.json records of the view of this instrument."""
        out: dict[str, Any] = {"view": self.mode}
        if self.mode == "none":
            out["splits_undone"] = [s.as_json() for s in self.splits]
        if self.factors is not None:
            out["factors"] = self.factors.summary()
        return out


def check_view(mode: str) -> str:
    m = str(mode).strip().lower()
    if m not in VIEWS:
        raise InputError(
            f"data.adjust must be one of {', '.join(VIEWS)}, got {mode!r}",
            hint='e.g. ARGS="data.adjust=total_return" (see README "Splits and dividends")',
        )
    return m


def resolve_view(
    catalog: Catalog,
    instrument_id: str,
    mode: str,
    first: dt.date,
    last: dt.date,
    *,
    splits: tuple[SplitDate, ...] = (),
    fill_command: str = "",
) -> PriceView:
    """The view of ``instrument_id`` for sessions ``first .. last``, or a clear refusal."""
    mode = check_view(mode)
    if mode == "splits":
        return PriceView(instrument_id, mode)
    if mode == "total_return":
        factors = load_factors(catalog, instrument_id)
        fetch = fill_command or (
            f"make fetch SYMBOLS={instrument_id.split('.')[0]} START={first} END={last} "
            'ARGS="corporate_actions.dividends=true"'
        )
        if factors is None:
            raise MissingFactors(
                f"{instrument_id}: data.adjust=total_return needs dividend factors and the "
                f"catalog {catalog.url} has none for it",
                hint=f"fetch them from IB: {fetch}\n(or import a CSV with an Adj Close column)",
                instrument=instrument_id,
                first=first,
                last=last,
            )
        if first < factors.first or last > factors.last:
            raise MissingFactors(
                f"{instrument_id}: the dividend factors (v{factors.version}, computed "
                f"{factors.computed_at:%Y-%m-%d}) cover {factors.first} .. {factors.last}; the "
                f"backtest reads {first} .. {last}",
                hint=f"refresh them: {fetch}",
                instrument=instrument_id,
                first=first,
                last=last,
            )
        return PriceView(instrument_id, mode, factors=factors)
    chosen = [s for s in splits if s.matches(instrument_id)]
    for e in load_events(catalog, instrument_id):
        given = [
            s
            for s in chosen
            if s.ratio == e.ratio and e.effective_after < s.effective <= e.effective_by
        ]
        if given:
            continue
        if e.pinned:
            chosen.append(SplitDate(instrument_id, e.effective_by, e.ratio, "recorded"))
            continue
        ambiguous_from = max(first, e.effective_after + dt.timedelta(days=1))
        if ambiguous_from < e.effective_by and ambiguous_from <= last:
            sym = instrument_id.split(".")[0]
            raise DataError(
                f"{instrument_id}: data.adjust=none must undo the split {e.label} recorded "
                f"{e.effective()}, and the backtest reads sessions in between: which session "
                "was the first in the new scale is not known (IB does not say)",
                hint=f"name it: ARGS='data.adjust=none data.splits=[\"{sym}:YYYY-MM-DD:"
                f"{e.ratio}\"]' (the first session traded in the new scale)",
            )
        chosen.append(SplitDate(instrument_id, e.effective_by, e.ratio, "recorded"))
    return PriceView(instrument_id, mode, splits=tuple(sorted(chosen, key=lambda s: s.effective)))

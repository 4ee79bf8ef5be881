"""Corporate actions of the TWS simulator: splits and cash dividends, answered as IB answers.

IB's "Historical data types" table (https://interactivebrokers.github.io/tws-api/historical_bars.html)
says TRADES bars are adjusted for splits but not for dividends, and ADJUSTED_LAST for both; the
adjustment is applied as of the moment of the request, and ADJUSTED_LAST only answers requests
that end "now" (an empty endDateTime; ib_insync #504). The simulator does the same, on its own
clock (``TwsSimulator.wall_clock``, "now"):

* The market model (:mod:`ntrader.ibkr.sim.market`) is the continuous price series. What traded
  on a day is the model divided by the product of the ratios of the splits effective on or before
  that day. A TRADES answer as of "now" is each traded bar adjusted for the splits effective after
  its day up to "now": the model divided by the product of every split effective by "now" — the
  same scale for the whole answer, which changes when "now" passes a split. Volumes are
  multiplied by the same factor. Prices are rounded to cents after the division.
* ADJUSTED_LAST multiplies the TRADES prices of each bar before an ex-date (effective by "now")
  by ``1 - amount / previous close`` (the close of the session before the ex-date, in the TRADES
  scale of the answer), the usual back-adjustment; volumes are not changed.

:func:`adjustment` gives the factors so tests can compute the ground truth of any answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ntrader.ibkr.sim.market import BarSet, data_sessions, session_bars


@dataclass(frozen=True)
class Split:
    """``ratio`` new shares for one old share (4 for a 4:1 split, 1/10 for a 1:10 reverse)."""

    symbol: str
    effective: dt.date  # first session traded in the new scale
    ratio: Fraction


@dataclass(frozen=True)
class Dividend:
    """A cash dividend of ``amount`` per share (in the scale traded on the ex-date)."""

    symbol: str
    ex_date: dt.date
    amount: float


def parse_action(text: str) -> Split | Dividend:
    """``split:AAPL:2024-06-10:4`` (or ``…:1/10``), ``dividend:AAPL:2024-05-10:0.24``."""
    kind, symbol, day, value = [*text.split(":"), "", "", "", ""][:4]
    try:
        when = dt.date.fromisoformat(day)
        if kind == "split":
            ratio = Fraction(value)
            if ratio <= 0:
                raise ValueError("ratio must be > 0")
            return Split(symbol.upper(), when, ratio)
        if kind == "dividend":
            amount = float(value)
            if not amount > 0:
                raise ValueError("amount must be > 0")
            return Dividend(symbol.upper(), when, amount)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"bad corporate action {text!r}: {exc}") from None
    raise ValueError(f"bad corporate action {text!r}: use split:SYM:DATE:RATIO or dividend:…")


def split_scale(actions: Iterable[Split | Dividend], symbol: str, now: dt.date) -> Fraction:
    """Product of the ratios of ``symbol``'s splits effective on or before ``now``."""
    scale = Fraction(1)
    for a in actions:
        if isinstance(a, Split) and a.symbol == symbol and a.effective <= now:
            scale *= a.ratio
    return scale


def _close_before(symbol: str, ex_date: dt.date, head: dt.date, scale: Fraction) -> float:
    """The TRADES close in dollars (model / scale, in cents) of the session before ``ex_date``."""
    sessions = data_sessions(ex_date - dt.timedelta(days=10), ex_date - dt.timedelta(days=1), head)
    daily = session_bars(symbol, sessions, 1440, True)
    return float(np.round(daily.close[-1] / float(scale))) / 100.0


def adjustment(
    actions: Iterable[Split | Dividend],
    symbol: str,
    head: dt.date,
    session_dates: np.ndarray,
    now: dt.date,
    what_to_show: str,
) -> tuple[Fraction, np.ndarray]:
    """(split scale of the answer, per-bar dividend price factor: ones unless ADJUSTED_LAST)."""
    acts = list(actions)
    scale = split_scale(acts, symbol, now)
    factor = np.ones(len(session_dates))
    if what_to_show.upper() == "ADJUSTED_LAST":
        days = np.asarray(session_dates, dtype="datetime64[D]")
        for a in acts:
            if isinstance(a, Dividend) and a.symbol == symbol and a.ex_date <= now:
                # the dividend's amount is in the scale traded on its ex-date
                traded = split_scale(acts, symbol, a.ex_date)
                amount = a.amount * float(traded / scale)
                prev = _close_before(symbol, a.ex_date, head, scale)
                factor[days < np.datetime64(a.ex_date)] *= 1.0 - amount / prev
    return scale, factor


def apply(bars: BarSet, scale: Fraction, factor: np.ndarray) -> BarSet:
    """``bars`` (model prices, integer cents) in the answer's scale: prices / scale x factor,
    rounded to cents; volume x scale."""
    if scale == 1 and bool(np.all(factor == 1.0)):
        return bars
    div = float(scale)

    def px(a: np.ndarray) -> np.ndarray:
        return np.maximum(1, np.round(a / div * factor)).astype(a.dtype)

    o, h, lo, c = px(bars.open), px(bars.high), px(bars.low), px(bars.close)
    h, lo = np.maximum.reduce([h, o, c]), np.minimum.reduce([lo, o, c])
    volume = np.round(bars.volume * div).astype(bars.volume.dtype)
    return BarSet(
        bars.ts_open_ns, o, h, lo, c, volume, bars.session_date, bars.daily, bars.sessions
    )

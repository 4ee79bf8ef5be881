"""Opening-range breakout, long only: ntrader's example of a strategy of your own.

For 1-minute bars of a US stock, in every regular session (09:30 New York open):

1. record the high and low of the first ``range_minutes`` bars (the *opening range*);
2. then buy ``trade_size`` shares at market when a bar closes above the range high
   (at most one entry per session);
3. sell at market when a bar closes below the range low (the stop), or at
   ``exit_minutes_before_close`` before the session close, whichever comes first.

It is flat every night, so it runs on a CASH account. Session open and close come from the XNYS
calendar (``ntrader.sessions``), so early-close days (13:00) exit before their real close.

A bar's ``ts_event`` is its CLOSE: the first regular bar (09:30-09:31) has ``ts_event`` 09:31.
In a backtest without a latency model a market order fills at once, at the close of the bar
that triggered it; the timed exit fills at the close of the bar closing at the exit time (or of
the last bar before it, when bars are missing).

*** TEACHING MATERIAL WITH NO ALPHA ADVANTAGE. NOT FOR TRADING REAL MONEY. ***
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from zoneinfo import ZoneInfo

from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import NonNegativeInt, PositiveInt, StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Price
from nautilus_trader.trading.strategy import Strategy

from ntrader.sessions import sessions_between

CALENDAR = "XNYS"  # NYSE holidays and early closes; every US-equity venue shares them
NEW_YORK = ZoneInfo("America/New_York")
NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND


class OpeningRangeConfig(StrategyConfig, frozen=True):
    """Configuration of :class:`OpeningRange`; ``instrument_id`` and ``bar_type`` come from ntrader.

    trade_size: shares bought on a breakout.
    range_minutes: length of the opening range, in minutes after the open.
    exit_minutes_before_close: flatten this many minutes before the session close.
    """

    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    range_minutes: PositiveInt = 30
    exit_minutes_before_close: NonNegativeInt = 5


@functools.lru_cache(maxsize=8192)
def session_window(date: dt.date) -> tuple[int, int] | None:
    """(open_ns, close_ns) in UTC ns of the regular session on ``date``; None if no session."""
    sessions = sessions_between(CALENDAR, date, date)
    if not len(sessions):
        return None  # weekend or holiday
    return int(sessions.open_ns[0]), int(sessions.close_ns[0])


def session_date(ts_event: int) -> dt.date:
    """New York date of the bar closing at ``ts_event`` (a bar closing at midnight is the day
    before, hence ``- 1`` ns)."""
    return dt.datetime.fromtimestamp((ts_event - 1) // NS_PER_SECOND, tz=NEW_YORK).date()


class OpeningRange(Strategy):
    """Opening-range breakout, long only, flat every night (see the module docstring)."""

    def __init__(self, config: OpeningRangeConfig) -> None:
        super().__init__(config)
        self.instrument: Instrument | None = None  # looked up in on_start
        self._reset_session(None)

    def _reset_session(self, date: dt.date | None) -> None:
        """Forget the previous session: a new one starts with an empty range and no entry."""
        self._date = date
        self._range_end_ns = 0  # bars closing up to here build the range
        self._exit_ns = 0  # no entries from here on; the exit alert fires here
        self._range_high: Price | None = None
        self._range_low: Price | None = None
        self._entered = False  # at most one entry per session

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        if self.instrument is None:
            self.log.error(f"Could not find instrument for {self.config.instrument_id}")
            self.stop()
            return
        # ntrader backtests feed bars from the catalog; there is no history to request.
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        date = session_date(bar.ts_event)
        window = session_window(date)
        if window is None:
            return  # a bar on a weekend or holiday: not a session, ignore it
        if date != self._date:
            self._start_session(date, *window)

        ts = bar.ts_event
        if ts <= window[0] or ts >= self._exit_ns:
            return  # pre-market, or too late in the day (the exit alert flattens us)

        if ts <= self._range_end_ns:  # still inside the opening range: widen it
            if self._range_high is None or bar.high > self._range_high:
                self._range_high = bar.high
            if self._range_low is None or bar.low < self._range_low:
                self._range_low = bar.low
            return

        if self._range_high is None or self._range_low is None:
            return  # no bars in the opening range (a data gap): sit this session out

        # BUY: the first close above the range high, once per session.
        if not self._entered and self.portfolio.is_flat(self.config.instrument_id):
            if bar.close > self._range_high:
                self._entered = True
                self.buy()
        # STOP: a close below the range low while long.
        elif self.portfolio.is_net_long(self.config.instrument_id) and bar.close < self._range_low:
            self.log.info(f"Stop: close {bar.close} < range low {self._range_low}")
            self.close_all_positions(self.config.instrument_id)

    def _start_session(self, date: dt.date, open_ns: int, close_ns: int) -> None:
        """First bar of a session: reset, compute its times, schedule the exit before close."""
        self._reset_session(date)
        self._range_end_ns = open_ns + self.config.range_minutes * NS_PER_MINUTE
        self._exit_ns = close_ns - self.config.exit_minutes_before_close * NS_PER_MINUTE
        # A time alert fires even when bars near the close are missing, so we are never
        # long overnight. close_ns is the real close: 13:00 on early-close days.
        self.clock.set_time_alert_ns(
            f"{self.id}-exit-{date.isoformat()}", self._exit_ns, self._on_exit_time
        )

    def _on_exit_time(self, event: TimeEvent) -> None:
        if not self.portfolio.is_flat(self.config.instrument_id):
            self.log.info(f"Session exit: {event.name}")
            self.close_all_positions(self.config.instrument_id)

    def buy(self) -> None:
        assert self.instrument is not None  # set in on_start
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide.BUY,
            quantity=self.instrument.make_qty(self.config.trade_size),
            time_in_force=TimeInForce.IOC,
        )
        self.submit_order(order)

    def on_stop(self) -> None:
        self.cancel_all_orders(self.config.instrument_id)
        self.close_all_positions(self.config.instrument_id)
        self.unsubscribe_bars(self.config.bar_type)

    def on_reset(self) -> None:
        self._reset_session(None)

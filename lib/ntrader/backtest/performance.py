"""Equity curves (per account event, and daily marked to market) and the risk numbers derived
from them (Sharpe, Sortino, drawdown).

NautilusTrader's ``Sharpe Ratio (252 days)`` is computed from per-position returns, which ignore
commissions and the capital actually at risk: a run that lost money can show a positive Sharpe.
ntrader's headline figures come from the account instead: at every session's last bar, equity =
cash (CASH accounts: balance + shares × close; MARGIN: balance + unrealized PnL at the close),
then daily returns, annualized with 252 sessions. Nautilus' own figures stay in the summary under
``nautilus_stats``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.enums import AccountType, OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Currency

from ntrader.backtest.analysis import venue_account

SESSIONS_PER_YEAR = 252


@dataclass(frozen=True)
class Fill:
    ts: int
    instrument_id: str
    qty: float  # signed: + buy, - sell
    px: float


def venue_fills(engine: BacktestEngine, venue: Venue) -> list[Fill]:
    """Every fill at ``venue``, in time order."""
    out = [
        Fill(
            int(e.ts_event),
            str(e.instrument_id),
            (1.0 if e.order_side == OrderSide.BUY else -1.0) * e.last_qty.as_double(),
            e.last_px.as_double(),
        )
        for o in engine.cache.orders()
        if o.instrument_id.venue == venue
        for e in o.events
        if isinstance(e, OrderFilled)
    ]
    out.sort(key=lambda f: f.ts)
    return out


def session_closes(ts: np.ndarray, close: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """The last bar of each session (local date of ``ts - 1 ns``): (times, closes)."""
    if not len(ts):
        return ts, close
    local = pd.DatetimeIndex(ts - 1, tz="UTC").tz_convert(tz)
    days = local.normalize().tz_localize(None).to_numpy().view(np.int64)
    last = np.r_[days[1:] != days[:-1], True]
    return ts[last], close[last]


def _position_path(fills: list[Fill], margin: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, quantity and average entry price after each fill (netting semantics)."""
    times, qtys, avgs = [], [], []
    q = avg = 0.0
    for f in fills:
        new = q + f.qty
        if q == 0 or (q > 0) != (f.qty > 0):  # opening, reducing, closing or flipping
            avg = f.px if (q == 0 or (new != 0 and (new > 0) != (q > 0))) else avg
        else:  # adding in the same direction
            avg = (avg * q + f.px * f.qty) / new
        q = new
        if abs(q) < 1e-12:
            q, avg = 0.0, 0.0
        times.append(f.ts)
        qtys.append(q)
        avgs.append(avg)
    return np.asarray(times, np.int64), np.asarray(qtys), np.asarray(avgs)


def _at(times: np.ndarray, values: np.ndarray, when: np.ndarray, default: float) -> np.ndarray:
    """``values`` of the last event at or before each of ``when`` (``default`` before any)."""
    idx = np.searchsorted(times, when, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)] if len(values) else default, default)
    return out.astype(np.float64)


def daily_equity(
    engine: BacktestEngine,
    venue: Venue,
    closes: dict[str, tuple[np.ndarray, np.ndarray]],
    tz: str = "America/New_York",
) -> pd.Series:
    """Equity at each session's last bar (UTC index), marked to that bar's close."""
    account = engine.portfolio.account(venue)
    currency = account.base_currency or next(iter(account.starting_balances()))
    states = sorted(account.events, key=lambda s: s.ts_event)
    st_t = np.asarray([s.ts_event for s in states], np.int64)
    st_v = np.asarray(
        [
            next((b.total.as_double() for b in s.balances if b.currency == currency), np.nan)
            for s in states
        ]
    )
    marks = {iid: session_closes(ts, px, tz) for iid, (ts, px) in closes.items()}
    when = np.unique(np.concatenate([t for t, _ in marks.values()] or [np.empty(0, np.int64)]))
    if not len(when):
        return pd.Series(dtype=np.float64, name="equity")
    start = float(account.starting_balances()[currency].as_double())
    equity = _at(st_t, st_v, when, start)
    margin = account.type == AccountType.MARGIN
    fills = venue_fills(engine, venue)
    for iid, (mt, mpx) in marks.items():
        mine = [f for f in fills if f.instrument_id == iid]
        if not mine:
            continue
        ft, fq, favg = _position_path(mine, margin)
        qty = _at(ft, fq, when, 0.0)
        avg = _at(ft, favg, when, 0.0)
        mark = _at(mt, mpx, when, np.nan)
        mult = float(engine.cache.instrument(_iid(engine, iid)).multiplier)
        value = qty * ((mark - avg) if margin else mark) * mult
        equity = equity + np.where(qty != 0, value, 0.0)
    index = pd.DatetimeIndex(when.view("datetime64[ns]")).tz_localize("UTC")
    return pd.Series(equity, index=index, name="equity")


def _iid(engine: BacktestEngine, text: str) -> Any:
    from nautilus_trader.model.identifiers import InstrumentId

    return InstrumentId.from_str(text)


def risk_metrics(
    equity: pd.Series, starting_balance: float, min_sessions: int = 2
) -> dict[str, Any]:
    """Sharpe, Sortino (annualized, 252 sessions), max drawdown % and volatility from daily
    equity; the starting balance is the first point of the curve.

    A ratio that means nothing on the data given is ``None`` with the reason in ``unavailable``:
    fewer than ``min_sessions`` daily returns (an annualised Sharpe over 4 sessions is noise),
    equity that never moved, or no losing session (Sortino)."""
    values = np.r_[starting_balance, equity.to_numpy(dtype=np.float64)]
    returns = values[1:] / values[:-1] - 1.0 if len(values) > 1 else np.empty(0)
    out: dict[str, Any] = {"sharpe": None, "sortino": None, "volatility_pct": None}
    why: dict[str, str] = {}
    need = max(2, int(min_sessions))
    if len(returns) < need:
        reason = (
            f"needs at least {need} sessions of daily equity to annualise; this run has "
            f"{len(returns)} (checks.min_sessions_for_ratios)"
        )
        why.update(sharpe=reason, sortino=reason, volatility_pct=reason)
    else:
        mean, sd = float(returns.mean()), float(returns.std(ddof=1))
        ann = math.sqrt(SESSIONS_PER_YEAR)
        if sd > 0:
            out["sharpe"] = mean / sd * ann
            out["volatility_pct"] = sd * ann * 100.0
        else:
            why["sharpe"] = why["volatility_pct"] = "equity did not change from session to session"
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        if downside > 0:
            out["sortino"] = mean / downside * ann
        else:
            why["sortino"] = "no session lost money: downside deviation is 0"
    peak = np.maximum.accumulate(values)
    out["max_drawdown_pct"] = float(np.max(1.0 - values / peak) * 100.0) if len(values) else 0.0
    out["sessions"] = float(len(returns))
    out["unavailable"] = why
    return out


def open_positions(
    engine: BacktestEngine, venue: Venue, closes: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, dict[str, float]]:
    """Positions open after the last bar of ``closes`` (fills up to that bar), marked to each
    instrument's last close: ``{instrument: {qty, avg_px, mark, unrealized_pnl}}`` (netting,
    as :func:`daily_equity`)."""
    account = engine.portfolio.account(venue)
    margin = account.type == AccountType.MARGIN
    last = max((int(ts[-1]) for ts, _ in closes.values() if len(ts)), default=None)
    fills = [f for f in venue_fills(engine, venue) if last is not None and f.ts <= last]
    out: dict[str, dict[str, float]] = {}
    for iid, (ts, px) in closes.items():
        mine = [f for f in fills if f.instrument_id == iid]
        if not mine or not len(ts):
            continue
        _, fq, favg = _position_path(mine, margin)
        if fq[-1] == 0:
            continue
        mult = float(engine.cache.instrument(_iid(engine, iid)).multiplier)
        mark = float(px[-1])
        out[iid] = {
            "qty": float(fq[-1]),
            "avg_px": float(favg[-1]),
            "mark": mark,
            "unrealized_pnl": float(fq[-1] * (mark - favg[-1]) * mult),
        }
    return out


def with_starting_point(
    curve: pd.Series, starting_balance: float, first_ns: int | None
) -> pd.Series:
    """``curve`` preceded by the starting balance one minute before the first bar (for plots)."""
    if curve.empty or first_ns is None:
        return curve
    t0 = pd.Timestamp(int(first_ns) - 60_000_000_000, tz="UTC")
    head = pd.Series([float(starting_balance)], index=[t0], name=curve.name)
    return pd.concat([head, curve])


def account_currency(engine: BacktestEngine, venue: Venue) -> Currency:
    """The currency an account's numbers are in: its base currency, else its first balance's."""
    account = venue_account(engine, venue)
    if account.base_currency is not None:
        return account.base_currency
    currencies = list(account.starting_balances()) or list(account.balances_total())
    if not currencies:
        raise ValueError(f"account of {venue} holds no balances")
    return currencies[0]


def equity_series(engine: BacktestEngine, venue: Venue) -> pd.Series:
    """Account equity after each account state time (UTC DatetimeIndex, unique, float values).

    MARGIN accounts: the total balance (realized equity). CASH accounts: the total cash balance
    plus open holdings valued at each instrument's latest fill price — the raw cash balance of a
    cash account drops by the full cost of every purchase, which is not a loss.
    """
    account = venue_account(engine, venue)
    currency = account_currency(engine, venue)
    states = sorted(account.events, key=lambda state: state.ts_event)
    times: list[int] = []
    cash: list[float] = []
    for state in states:
        for balance in state.balances:
            if balance.currency == currency:
                ts = int(state.ts_event)
                if times and times[-1] == ts:  # keep the last state of a timestamp: the one
                    cash[-1] = balance.total.as_double()  # after all fills at that time
                else:
                    times.append(ts)
                    cash.append(balance.total.as_double())
                break
    values = np.asarray(cash, dtype=np.float64)
    if account.type == AccountType.CASH and times:
        values = values + _holdings_value(engine, venue, currency, np.asarray(times, np.int64))
    index = pd.DatetimeIndex(np.asarray(times, dtype=np.int64).view("datetime64[ns]"))
    return pd.Series(values, index=index.tz_localize("UTC"), name="equity", dtype=np.float64)


def _holdings_value(
    engine: BacktestEngine, venue: Venue, currency: Currency, times: np.ndarray
) -> np.ndarray:
    """Value of open holdings at each of ``times`` (fills at or before the time count)."""
    cache = engine.cache
    fills: list[tuple[int, Any, float, float]] = []
    for order in cache.orders():
        if order.instrument_id.venue != venue:
            continue
        for event in order.events:
            if isinstance(event, OrderFilled):
                sign = 1.0 if event.order_side == OrderSide.BUY else -1.0
                fills.append(
                    (
                        int(event.ts_event),
                        event.instrument_id,
                        sign * event.last_qty.as_double(),
                        event.last_px.as_double(),
                    )
                )
    fills.sort(key=lambda f: f[0])
    multipliers: dict[Any, float] = {}
    qty: dict[Any, float] = {}
    last_px: dict[Any, float] = {}
    out = np.zeros(len(times), dtype=np.float64)
    j = 0
    for i, t in enumerate(times):
        while j < len(fills) and fills[j][0] <= t:
            _, iid, signed_qty, px = fills[j]
            if iid not in multipliers:
                instrument = cache.instrument(iid)
                same = instrument is not None and instrument.quote_currency == currency
                multipliers[iid] = float(instrument.multiplier) if same else 0.0
            qty[iid] = qty.get(iid, 0.0) + signed_qty
            last_px[iid] = px
            j += 1
        out[i] = sum(q * last_px[iid] * multipliers[iid] for iid, q in qty.items() if q)
    return out


def drawdown_pct(equity: pd.Series) -> pd.Series:
    """Percent below the running peak (<= 0)."""
    if equity.empty:
        return equity.copy()
    return (equity / equity.cummax() - 1.0) * 100.0

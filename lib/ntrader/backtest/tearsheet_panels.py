"""The numbers behind ``tearsheet.html``'s panels, from the same inputs as ``summary.json``: the
daily marked-to-market equity (its first point the starting balance) and the positions report.

* :func:`session_equity` / :func:`daily_returns` — equity at each session's last bar and the
  returns between them, exactly the series :func:`ntrader.backtest.performance.risk_metrics`
  derives Sharpe, Sortino and the drawdown from;
* :func:`rolling_sharpe` — annualized over ``ROLLING_SESSIONS`` sessions, or why it cannot be;
* :func:`monthly_returns` — compounded per calendar month, partial months marked;
* :func:`trade_stats` — closed position cycles of ``positions.csv``: counts, averages, extremes;
* :func:`exposure` — sessions and regular-hours time with a position open.

Every function returns plain data; a panel that cannot be computed gets a sentence saying why.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ntrader.backtest.performance import SESSIONS_PER_YEAR
from ntrader.errors import InputError
from ntrader.sessions import sessions_between

ROLLING_SESSIONS = 63  # one quarter of sessions
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def session_dates(index: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    """Session date (tz-naive midnight) of each UTC time: the local date of ``ts - 1 ns``, as
    bars are dated (a bar closing at 20:00 New York time belongs to that day)."""
    utc = pd.DatetimeIndex(index).tz_convert("UTC") - pd.Timedelta(1, "ns")
    return utc.tz_convert(tz).tz_localize(None).normalize()


def session_equity(equity: pd.Series, tz: str) -> tuple[float | None, pd.Series]:
    """(base, equity at each session's last point): the base is the curve's first point (the
    starting balance), the rest keyed by session date (the last point of each date)."""
    if equity.empty:
        return None, pd.Series(dtype=np.float64)
    base = float(equity.iloc[0])
    rest = equity.iloc[1:].astype(np.float64)
    daily = rest.groupby(session_dates(pd.DatetimeIndex(rest.index), tz)).last()
    return base, daily


def daily_returns(equity: pd.Series, tz: str) -> pd.Series:
    """Session returns (fractions) keyed by session date; the first one against the base."""
    base, daily = session_equity(equity, tz)
    if base is None or daily.empty:
        return pd.Series(dtype=np.float64)
    values = np.r_[base, daily.to_numpy()]
    return pd.Series(values[1:] / values[:-1] - 1.0, index=daily.index, name="return")


def rolling_sharpe(returns: pd.Series, window: int = ROLLING_SESSIONS) -> pd.Series | str:
    """Sharpe over the last ``window`` sessions at each session (annualized like the headline
    figure), or a sentence saying why the run is too short for at least two points."""
    need = window + 1
    if len(returns) < need:
        return (
            f"Rolling Sharpe ({window} sessions) needs at least {need} sessions; "
            f"this run has {len(returns)}."
        )
    roll = returns.rolling(window)
    sd = roll.std(ddof=1)
    out = roll.mean() / sd.where(sd > 0) * math.sqrt(SESSIONS_PER_YEAR)
    return out.dropna()


@dataclass(frozen=True)
class Month:
    year: int
    month: int
    return_pct: float
    sessions: int  # sessions of the run in this month
    calendar_sessions: int | None  # sessions the calendar has in it (None: no calendar)

    @property
    def partial(self) -> bool:
        return self.calendar_sessions is not None and self.sessions < self.calendar_sessions


def monthly_returns(equity: pd.Series, tz: str, calendar: str | None) -> list[Month]:
    """Compounded return of each calendar month (month-end equity over the previous month-end,
    the first month over the base); months the run covers only in part are marked."""
    base, daily = session_equity(equity, tz)
    if base is None or daily.empty:
        return []
    index = pd.DatetimeIndex(daily.index)
    keys = index.year * 100 + index.month
    ends = daily.groupby(keys).last()
    counts = daily.groupby(keys).size()
    prev = np.r_[base, ends.to_numpy()[:-1]]
    months = []
    for (key, end), start, n in zip(ends.items(), prev, counts.to_numpy(), strict=True):
        year, month = divmod(int(str(key)), 100)
        months.append(
            Month(
                year,
                month,
                (end / start - 1.0) * 100.0,
                int(n),
                _calendar_count(calendar, year, month),
            )
        )
    return months


def _calendar_count(calendar: str | None, year: int, month: int) -> int | None:
    if calendar is None:
        return None
    first = dt.date(year, month, 1)
    last = (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()
    try:
        return len(sessions_between(calendar, first, last))
    except (InputError, ValueError, KeyError):  # outside the calendar's range
        return None


def money(column: pd.Series) -> np.ndarray:
    """Amounts of a report column: ``'-26.18 USD'``, ``"['2.00 USD']"`` or numbers -> floats."""
    out = np.full(len(column), np.nan)
    for i, value in enumerate(column.tolist()):
        if isinstance(value, int | float | np.number):
            out[i] = float(value)
            continue
        found = _NUMBER.findall(str(value).replace(",", "").replace("_", ""))
        if found:
            out[i] = sum(float(x) for x in found)
    return out


def _times(column: pd.Series) -> np.ndarray:
    """UTC ns of a report time column (Timestamps, ISO strings or ns); NaT -> int64 min."""
    return _ns(pd.DatetimeIndex(pd.to_datetime(column, utc=True, errors="coerce")))


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """int64 ns of a DatetimeIndex (tz-aware: UTC; naive: as is); NaT -> int64 min."""
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.asarray(index.to_numpy("datetime64[ns]")).view(np.int64)


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ns, np.int64), unit="ns", utc=True))


def _is_closed(positions: pd.DataFrame) -> np.ndarray:
    if "ts_closed" in positions:
        return pd.to_datetime(positions["ts_closed"], utc=True, errors="coerce").notna().to_numpy()
    return (positions["side"].astype(str) == "FLAT").to_numpy()


def trade_stats(positions: pd.DataFrame | None) -> dict[str, Any] | str:
    """Closed trades (position cycles: NETTING snapshots are earlier cycles, not copies) of the
    positions report, or a sentence when there are none."""
    if positions is None or positions.empty:
        return "No trades: the strategy opened no position."
    closed = _is_closed(positions)
    pnl = money(positions["realized_pnl"])[closed]
    if not closed.any():
        return f"No closed trades yet: {len(positions)} position(s) still open at the end."
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    entry = positions["entry"].astype(str).to_numpy()[closed] if "entry" in positions else None
    held = (
        pd.to_numeric(positions["duration_ns"], errors="coerce").to_numpy()[closed]
        if "duration_ns" in positions
        else np.empty(0)
    )
    return {
        "trades": int(closed.sum()),
        "open": int((~closed).sum()),
        "winners": len(wins),
        "losers": len(losses),
        "breakeven": int((pnl == 0).sum()),
        "long": None if entry is None else int((entry == "BUY").sum()),
        "short": None if entry is None else int((entry == "SELL").sum()),
        "win_rate": len(wins) / len(pnl),
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "best": float(pnl.max()),
        "worst": float(pnl.min()),
        "gross_profit": float(wins.sum()),
        "gross_loss": float(losses.sum()),
        "net": float(pnl.sum()),
        "avg_held": pd.Timedelta(float(np.nanmean(held)), "ns") if len(held) else None,
    }


def _intervals(positions: pd.DataFrame, end_ns: int) -> np.ndarray:
    """(opened, closed) ns of every position, open ones ending at ``end_ns``; merged, sorted."""
    opened = _times(positions["ts_opened"])
    closed = _times(positions["ts_closed"])
    nat = np.iinfo(np.int64).min
    closed = np.where(closed == nat, end_ns, closed)
    keep = opened != nat
    pairs = sorted(zip(opened[keep].tolist(), closed[keep].tolist(), strict=True))
    merged: list[list[int]] = []
    for a, b in pairs:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return np.asarray(merged, dtype=np.int64).reshape(-1, 2)


def exposure(
    positions: pd.DataFrame | None, equity: pd.Series, tz: str, calendar: str | None
) -> dict[str, Any] | str:
    """Share of the run's sessions with a position open at some point, and of regular trading
    hours (from ``calendar``) with a position open."""
    _, daily = session_equity(equity, tz)
    if daily.empty:
        return "No sessions: the run has no equity points."
    n = len(daily)
    if positions is None or positions.empty:
        return {"sessions": n, "sessions_in_market": 0, "time_share": 0.0, "hours": 0.0}
    end_ns = int(_ns(pd.DatetimeIndex(equity.index))[-1])
    spans = _intervals(positions, end_ns)
    days = _ns(pd.DatetimeIndex(daily.index))
    first = _ns(session_dates(_utc(spans[:, 0]), tz))
    last = _ns(session_dates(_utc(spans[:, 1]), tz))
    touched = np.zeros(n, dtype=bool)
    for a, b in zip(first, last, strict=True):
        touched |= (days >= a) & (days <= b)
    out: dict[str, Any] = {
        "sessions": n,
        "sessions_in_market": int(touched.sum()),
        "hours": float((spans[:, 1] - spans[:, 0]).sum() / 3.6e12),
        "time_share": None,
        "time_note": None,
    }
    if calendar is None:
        out["time_note"] = "no trading calendar for this venue"
        return out
    d0, d1 = pd.Timestamp(days[0]).date(), pd.Timestamp(days[-1]).date()
    sess = sessions_between(calendar, d0, d1)
    wanted = np.isin(sess.dates.astype("datetime64[ns]").view(np.int64), days)
    opens, closes = sess.open_ns[wanted], sess.close_ns[wanted]
    total = float((closes - opens).sum())
    held = 0.0
    for a, b in spans:
        held += float(np.clip(np.minimum(closes, b) - np.maximum(opens, a), 0, None).sum())
    out["time_share"] = held / total if total > 0 else None
    return out

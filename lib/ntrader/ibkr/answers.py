"""IB's answers as the catalog's column form: historical bars -> :class:`BarFrame`, and daily
OHLC by session (what the split check compares stored sessions with).

IB stamps a bar at its OPEN (intraday: a UTC datetime with ``formatDate=2``; daily: the session
date); the catalog stamps it at its CLOSE (``ts_event``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from ib_async import BarData
from nautilus_trader.model.data import BarType
from nautilus_trader.model.instruments import Equity

from ntrader.catalog.barframe import BarFrame
from ntrader.ibkr.client import bar_open_ns
from ntrader.instruments import bar_step
from ntrader.sessions import local_dates


def to_frame(
    bars: list[BarData], bar_type: BarType, equity: Equity, sessions: set[dt.date], tz: str
) -> BarFrame:
    """IB bars (stamped at the OPEN) -> BarFrame with ts_event = bar CLOSE, inside ``sessions``."""
    step = bar_step(bar_type)
    p = int(equity.price_precision)
    if not bars:
        return BarFrame.empty(p, 0)
    opens = np.array([bar_open_ns(b) for b in bars], dtype=np.int64)
    if step.daily:
        local = pd.DatetimeIndex(opens, tz="UTC").tz_convert(tz).normalize()
        shifted = (local + pd.Timedelta(days=step.calendar_days)).tz_convert("UTC")
        ts = shifted.tz_localize(None).to_numpy().view(np.int64)
    else:
        ts = opens + step.interval_ns
    o, h, lo, c = (
        np.round(np.array([getattr(b, name) for b in bars], dtype=np.float64), p)
        for name in ("open", "high", "low", "close")
    )
    vol = np.round(np.array([float(b.volume) for b in bars], dtype=np.float64), 0)
    frame = BarFrame(ts, o, h, lo, c, vol, p, 0)
    keep = np.isin(local_dates(ts - 1, tz), np.array(sorted(sessions), dtype="datetime64[D]"))
    frame = frame.take(keep)
    order = np.argsort(frame.ts_event, kind="stable")
    frame = frame.take(order)
    if len(frame) > 1:  # IB may repeat a bar at a chunk edge: keep the last copy
        last = np.r_[frame.ts_event[1:] != frame.ts_event[:-1], True]
        frame = frame.take(last)
    return frame


def daily_ohlc(bars: list[BarData]) -> dict[dt.date, tuple[float, float, float, float]]:
    """IB daily bars by session date: (open, high, low, close)."""
    out: dict[dt.date, tuple[float, float, float, float]] = {}
    for b in bars:
        d = b.date.date() if isinstance(b.date, dt.datetime) else b.date
        out[d] = (float(b.open), float(b.high), float(b.low), float(b.close))
    return out

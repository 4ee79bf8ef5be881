"""Deterministic market data of the TWS simulator: symbols, bars as a pure function of time.

Ground truth: every 1-minute bar is a pure function of (symbol, minute open time). The close of
minute ``m`` (epoch minutes) is ``base * (1 + Σ sinusoids of m + hash jitter)`` rounded to cents;
the open is the close of minute ``m - 1``; high/low lie a hashed number of cents beyond them;
volume is a hashed integer. Larger bars aggregate the 1-minute bars of the session window they
cover (regular 09:30–16:00 New York, or extended 04:00–20:00 when ``useRTH=0``), on a grid
anchored at local midnight and clipped to the session: an hourly RTH bar opens at 09:30, then
10:00, …, 15:00. Daily bars aggregate a whole session window and are dated by the session.

So any request window returns the same values for the same bars, and :func:`ground_truth` gives
tests the exact values to compare a fetched catalog with. Prices are integer cents internally and
float ``cents / 100`` outside (the nearest double to the 2-decimal value: exact round trips).
What a historical request selects from this model is :mod:`ntrader.ibkr.sim.bar_requests`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ntrader.sessions import Sessions, expand_grid, sessions_between

CALENDAR = "XNYS"
TZ = "America/New_York"
IB_TZ = "US/Eastern"  # what TWS calls the zone in contract details and bar dates
NS = 1_000_000_000
MINUTE_NS = 60 * NS
DAY_NS = 86_400 * NS
DAILY = 1440  # bar_minutes meaning one bar per session
DEFAULT_HEAD = dt.date(2000, 1, 3)


# --------------------------------------------------------------------------------------------------
# Symbols


@dataclass(frozen=True)
class SymbolInfo:
    """A US stock the simulator knows (SMART routed, USD)."""

    symbol: str
    con_id: int
    primary_exchange: str
    long_name: str
    stock_type: str = "COMMON"
    industry: str = ""
    head: dt.date = DEFAULT_HEAD  # first day with data (reqHeadTimeStamp)

    @property
    def trading_class(self) -> str:
        return "NMS" if self.primary_exchange == "NASDAQ" else self.symbol


_S = SymbolInfo
_NAS, _NYSE, _ARCA = "NASDAQ", "NYSE", "ARCA"
_TECH, _COMM, _FIN, _FUND = "Technology", "Communications", "Financial", "Funds"

SYMBOLS: dict[str, SymbolInfo] = {
    s.symbol: s
    for s in (
        _S("AAPL", 265598, _NAS, "APPLE INC", industry=_TECH),
        _S("MSFT", 272093, _NAS, "MICROSOFT CORP", industry=_TECH),
        _S("NVDA", 4815747, _NAS, "NVIDIA CORP", industry=_TECH),
        _S("AMZN", 3691937, _NAS, "AMAZON.COM INC", industry=_COMM),
        _S("GOOGL", 208813719, _NAS, "ALPHABET INC-CL A", industry=_COMM),
        _S(
            "META",
            107113386,
            _NAS,
            "META PLATFORMS INC-CLASS A",
            industry=_COMM,
            head=dt.date(2012, 5, 18),
        ),
        _S(
            "TSLA",
            76792991,
            _NAS,
            "TESLA INC",
            industry="Consumer, Cyclical",
            head=dt.date(2010, 6, 29),
        ),
        _S("AMD", 4391, _NAS, "ADVANCED MICRO DEVICES", industry=_TECH),
        _S("INTC", 270639, _NAS, "INTEL CORP", industry=_TECH),
        _S("NFLX", 15124833, _NAS, "NETFLIX INC", industry=_COMM),
        _S("QQQ", 320227571, _NAS, "INVESCO QQQ TRUST SERIES 1", "ETF", _FUND),
        _S("IBM", 8314, _NYSE, "INTL BUSINESS MACHINES CORP", industry=_TECH),
        _S("JPM", 1520593, _NYSE, "JPMORGAN CHASE & CO", industry=_FIN),
        _S("XOM", 13977, _NYSE, "EXXON MOBIL CORP", industry="Energy"),
        _S("KO", 8894, _NYSE, "COCA-COLA CO/THE", industry="Consumer, Non-cyclical"),
        _S("BRK B", 72063691, _NYSE, "BERKSHIRE HATHAWAY INC-CL B", industry=_FIN),
        _S("SPY", 756733, _ARCA, "SPDR S&P 500 ETF TRUST", "ETF", _FUND),
        _S("IWM", 9579970, _ARCA, "ISHARES RUSSELL 2000 ETF", "ETF", _FUND),
        _S("GLD", 51529211, _ARCA, "SPDR GOLD SHARES", "ETF", _FUND),
    )
}


def synthetic_symbol(symbol: str, primary_exchange: str = "NASDAQ") -> SymbolInfo:
    """A made-up known symbol (stable conId from a hash) for benchmarks with many tickers."""
    name = symbol.strip().upper()
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    con_id = 900_000_000 + int.from_bytes(digest, "big") % 99_000_000
    return SymbolInfo(name, con_id, primary_exchange.upper(), f"{name} SYNTHETIC INC", "Synthetic")


# --------------------------------------------------------------------------------------------------
# The 1-minute price model


def _seed(symbol: str) -> int:
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over uint64 arrays (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(minutes: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """Hash-uniform floats in [0, 1) per minute index, independent per (seed, stream)."""
    key = np.uint64((seed ^ (stream * 0xD1B54A32D192ED03)) & 0xFFFFFFFFFFFFFFFF)
    h = _mix(minutes.astype(np.uint64) ^ key)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _close_cents(minutes: np.ndarray, seed: int, base: float) -> np.ndarray:
    x = minutes.astype(np.float64)
    ph = [(seed >> s) % 1000 / 1000.0 * 2 * np.pi for s in (3, 13, 23, 33)]
    wave = (
        0.08 * np.sin(2 * np.pi * x / 23_909.0 + ph[0])  # ~2.5 months of RTH minutes
        + 0.03 * np.sin(2 * np.pi * x / 1_830.0 + ph[1])  # ~1.3 days
        + 0.006 * np.sin(2 * np.pi * x / 97.0 + ph[2])
        + 0.002 * np.sin(2 * np.pi * x / 13.0 + ph[3])
    )
    jitter = (_uniform(minutes, seed, 1) - 0.5) * 0.002
    return np.rint(base * 100.0 * (1.0 + wave + jitter)).astype(np.int64)


def minute_bars(symbol: str, ts_open_ns: np.ndarray) -> dict[str, np.ndarray]:
    """OHLC (int64 cents) and volume (int64) of the 1-minute bars opening at ``ts_open_ns``."""
    seed = _seed(symbol)
    base = 20.0 + (seed % 48_000) / 100.0
    m = np.asarray(ts_open_ns, dtype=np.int64) // MINUTE_NS
    close = _close_cents(m, seed, base)
    open_ = _close_cents(m - 1, seed, base)
    reach = max(base * 0.15, 1.0)  # up to ~0.15 % beyond the body, in cents
    up = np.floor(_uniform(m, seed, 2) * reach).astype(np.int64)
    down = np.floor(_uniform(m, seed, 3) * reach).astype(np.int64)
    high = np.maximum(open_, close) + up
    low = np.maximum(np.minimum(open_, close) - down, 1)
    volume = 100 + np.floor(_uniform(m, seed, 4) ** 2 * 20_000).astype(np.int64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


# --------------------------------------------------------------------------------------------------
# Bars over sessions


@dataclass
class BarSet:
    """Bars in cents; ``session_date`` is the session of each bar (datetime64[D])."""

    ts_open_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    session_date: np.ndarray
    daily: bool = False
    sessions: list[dt.date] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.ts_open_ns.shape[0])

    def take(self, mask: np.ndarray) -> BarSet:
        return BarSet(
            self.ts_open_ns[mask],
            self.open[mask],
            self.high[mask],
            self.low[mask],
            self.close[mask],
            self.volume[mask],
            self.session_date[mask],
            self.daily,
            self.sessions,
        )


def _empty(daily: bool) -> BarSet:
    z = np.empty(0, dtype=np.int64)
    return BarSet(z, z, z, z, z, z, np.empty(0, dtype="datetime64[D]"), daily)


def windows(sessions: Sessions, use_rth: bool) -> tuple[np.ndarray, np.ndarray]:
    return sessions.window("regular" if use_rth else "extended")


def count_bars(sessions: Sessions, bar_minutes: int, use_rth: bool) -> int:
    """Number of bars :func:`session_bars` would produce (cheap, for size limits)."""
    if bar_minutes == DAILY:
        return len(sessions)
    open_ns, close_ns = windows(sessions, use_rth)
    return int(((close_ns - open_ns) // MINUTE_NS).sum() // max(1, bar_minutes) + len(sessions))


def session_bars(symbol: str, sessions: Sessions, bar_minutes: int, use_rth: bool) -> BarSet:
    """Every bar of ``bar_minutes`` (or DAILY) over the given sessions' windows."""
    daily = bar_minutes == DAILY
    if len(sessions) == 0:
        return _empty(daily)
    open_ns, close_ns = windows(sessions, use_rth)
    counts = (close_ns - open_ns) // MINUTE_NS
    ts = expand_grid(open_ns, counts, MINUTE_NS)
    sess = np.repeat(np.arange(len(sessions)), counts)
    mb = minute_bars(symbol, ts)
    if bar_minutes == 1:
        return BarSet(
            ts,
            mb["open"],
            mb["high"],
            mb["low"],
            mb["close"],
            mb["volume"],
            sessions.dates[sess],
            False,
            sessions.date_list(),
        )
    if daily:
        label = sess.astype(np.int64)
    else:
        step = bar_minutes * MINUTE_NS
        anchor = sessions.midnight_ns[sess]
        label = np.maximum(anchor + (ts - anchor) // step * step, open_ns[sess])
    starts = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
    ends = np.r_[starts[1:], label.shape[0]] - 1
    bar_ts = open_ns[sess[starts]] if daily else label[starts]
    return BarSet(
        bar_ts,
        mb["open"][starts],
        np.maximum.reduceat(mb["high"], starts),
        np.minimum.reduceat(mb["low"], starts),
        mb["close"][ends],
        np.add.reduceat(mb["volume"], starts),
        sessions.dates[sess[starts]],
        daily,
        sessions.date_list(),
    )


def data_sessions(start: dt.date, end: dt.date, head: dt.date) -> Sessions:
    """The sessions ``start..end`` (inclusive) from a symbol's ``head`` date on."""
    return sessions_between(CALENDAR, max(start, head), end)


def ground_truth(
    symbol: str,
    start: dt.date,
    end: dt.date,
    bar_minutes: int = 1,
    use_rth: bool = True,
    symbols: dict[str, SymbolInfo] | None = None,
) -> dict[str, np.ndarray]:
    """The bars the simulator serves for ``symbol`` in sessions ``start..end`` (inclusive).

    ``bar_minutes``: 1, 5, 15, 60, … or 1440 (= one daily bar per session, ``ts_open_ns`` = the
    session window's open). Returns numpy arrays ``ts_open_ns`` (int64 UTC ns of the bar OPEN),
    ``open``/``high``/``low``/``close`` (float64, 2 decimals) and ``volume`` (int64). Sessions
    before the symbol's head timestamp have no bars; faults (no_data_sessions) are not applied.
    """
    info = (symbols or SYMBOLS).get(symbol.strip().upper())
    head = info.head if info else DEFAULT_HEAD
    sessions = data_sessions(start, end, head)
    bars = session_bars(symbol.strip().upper(), sessions, bar_minutes, use_rth)
    return {
        "ts_open_ns": bars.ts_open_ns.astype(np.int64),
        "open": bars.open / 100.0,
        "high": bars.high / 100.0,
        "low": bars.low / 100.0,
        "close": bars.close / 100.0,
        "volume": bars.volume.astype(np.int64),
    }


# --------------------------------------------------------------------------------------------------
# Calendar facts for contract details and head timestamps


def local_date(ns: int) -> dt.date:
    """The New York date of a UTC ns instant."""
    return pd.Timestamp(ns, tz="UTC").tz_convert(TZ).date()


def head_timestamp_ns(info: SymbolInfo) -> int:
    """UTC ns of the first regular-session open of the symbol's head date."""
    s = sessions_between(CALENDAR, info.head, info.head + dt.timedelta(days=10))
    return int(s.open_ns[0])


def trading_hours(now_ns: int, use_rth: bool, days: int = 7) -> str:
    """IB's tradingHours/liquidHours text for the week from ``now_ns``'s local date."""
    first = local_date(now_ns)
    s = sessions_between(CALENDAR, first, first + dt.timedelta(days=days - 1))
    open_ns, close_ns = windows(s, use_rth)
    by_date = {d: (o, c) for d, o, c in zip(s.date_list(), open_ns, close_ns, strict=True)}
    parts = []
    for k in range(days):
        d = first + dt.timedelta(days=k)
        if d in by_date:
            o, c = by_date[d]
            lo = pd.Timestamp(int(o), tz="UTC").tz_convert(TZ).strftime("%Y%m%d:%H%M")
            hi = pd.Timestamp(int(c), tz="UTC").tz_convert(TZ).strftime("%Y%m%d:%H%M")
            parts.append(f"{lo}-{hi}")
        else:
            parts.append(f"{d:%Y%m%d}:CLOSED")
    return ";".join(parts)

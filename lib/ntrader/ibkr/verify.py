"""Is the stored history still in IB's current split scale? Checked on every fetch that writes.

IB answers TRADES (and MIDPOINT/BID/ASK) bars adjusted for every split up to the moment of the
request — "Historical data types", https://interactivebrokers.github.io/tws-api/historical_bars.html
— so a split between two fetches leaves the catalog with old-scale bars before new-scale ones.
The check (``corporate_actions.verify``):

``session`` (default)
    Each bar type a fetch writes to has ONE stored session re-asked: the session just before
    (or after) a planned request rides on that request (one more session of duration, no extra
    request — the nightly cron case), otherwise the latest stored session costs one request of its
    own. Its stored bars are compared with IB's answer bar by bar (the median of stored / IB over
    open, high, low and close): the same scale (within ``tolerance``), a split ratio
    (:data:`ntrader.catalog.corporate.SPLIT_RATIOS`), or a difference that is no split (reported,
    not repaired). A fetch with nothing to write asks nothing: it cannot create a mix of scales.
``full``
    Also one daily TRADES request per instrument over its whole stored range, compared session by
    session, on every fetch (an audit of a catalog filled before this check existed).
``off``
    No check (said in the fetch summary).

On a split, one daily TRADES request over the instrument's stored range finds every stored
session in an older scale (any bar type of the instrument), and ``corporate_actions.on_change``
decides: ``rescale`` (default: prices / ratio at the instrument's precision, volumes x ratio, one
commit per bar type, no request), ``refetch`` (those sessions asked again — about one request per
session of 1-minute bars, so hours at IB's pacing for years of history — and what IB no longer
has rescaled), or ``fail`` (exit 1 before anything of the instrument is written). Every repair is
recorded (:mod:`ntrader.catalog.corporate`) and shown in the fetch summary.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
from ib_async import BarData
from nautilus_trader.model.data import BarType
from nautilus_trader.model.instruments import Equity

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.corporate import nearest_split_ratio, ratio_label
from ntrader.errors import InputError
from ntrader.ibkr.answers import daily_ohlc, to_frame
from ntrader.ibkr.plan import (
    MAX_DURATION_DAYS,
    PlannedRequest,
    default_chunk_sessions,
    ib_bar_size,
    plan,
)
from ntrader.instruments import bar_step
from ntrader.sessions import Sessions, calendar_timezone, local_dates, sessions_between

VERIFY_MODES = ("session", "full", "off")
ON_CHANGE = ("rescale", "refetch", "fail")
DEFAULT_TOLERANCE = 0.05  # |stored / IB - 1| within this: the same scale (or that split ratio)

PRICES = ("open", "high", "low", "close")
Fetch = Callable[[PlannedRequest, str], Awaitable[list[BarData]]]


@dataclass(frozen=True)
class CorporateActionPolicy:
    """``corporate_actions.*``: how a fetch checks the stored scale and what a split does."""

    verify: str = "session"
    on_change: str = "rescale"
    tolerance: float = DEFAULT_TOLERANCE
    dividends: bool = False  # + ADJUSTED_LAST/TRADES daily per instrument: dividend factors

    def __post_init__(self) -> None:
        if not isinstance(self.dividends, bool):
            raise InputError(
                f"corporate_actions.dividends must be true or false, got {self.dividends!r}",
                hint='e.g. ARGS="corporate_actions.dividends=true"',
            )
        if self.verify not in VERIFY_MODES:
            raise InputError(
                f"corporate_actions.verify must be one of {', '.join(VERIFY_MODES)}, got "
                f"{self.verify!r}",
                hint='e.g. ARGS="corporate_actions.verify=full"',
            )
        if self.on_change not in ON_CHANGE:
            raise InputError(
                f"corporate_actions.on_change must be one of {', '.join(ON_CHANGE)}, got "
                f"{self.on_change!r}",
                hint='e.g. ARGS="corporate_actions.on_change=fail"',
            )
        if not (isinstance(self.tolerance, float) and 0 < self.tolerance < 0.2):
            raise InputError(
                f"corporate_actions.tolerance must be a fraction in (0, 0.2), got "
                f"{self.tolerance!r}",
                hint="the relative distance of a price ratio to 1 or to a split ratio, e.g. 0.05",
            )

    @classmethod
    def of(cls, cfg: Mapping[str, Any] | None) -> CorporateActionPolicy:
        """From the ``corporate_actions`` config (missing keys: the defaults)."""
        cfg = cfg or {}
        tol = cfg.get("tolerance", DEFAULT_TOLERANCE)
        try:
            tolerance = float(tol)
        except (TypeError, ValueError):
            tolerance = math.nan
        return cls(
            verify=str(cfg.get("verify", "session")).lower(),
            on_change=str(cfg.get("on_change", "rescale")).lower(),
            tolerance=tolerance if math.isfinite(tolerance) else -1.0,
            dividends=cfg.get("dividends", False),
        )


@dataclass(frozen=True)
class Probe:
    """The stored session a fetch re-asks IB for, and the request that carries it."""

    session: dt.date
    index: int | None  # the planned request grown by this session (None: a request of its own)
    request: PlannedRequest


@dataclass(frozen=True)
class ScaleCheck:
    """One stored session of a bar type against IB's answer now."""

    session: str
    how: str  # folded (rode on a planned request) | request (one of its own) | daily
    bars: int  # bars compared
    measured: float | None  # median stored / IB
    verdict: str  # same | split | differs | unverified
    ratio: str | None = None  # the split ratio (verdict split), e.g. "4:1"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------ choosing a probe
def _fold_limit(bar_size: str) -> int:
    """Sessions a request may hold when grown by the probe: one more than the safe default for
    minute bars and up (IB serves ~5 D of 1-min bars; ib_insync #268), none for seconds bars."""
    if "secs" in bar_size:
        return 0
    return min(MAX_DURATION_DAYS, default_chunk_sessions(bar_size) + 1)


def _has_bars(catalog: Catalog, bar_type: BarType, sessions: Sessions, i: int) -> bool:
    lo = int(sessions.midnight_ns[i])
    ts = catalog.read_ts_event(bar_type, lo + 1, lo + 86_400 * 10**9)
    return bool(ts.size)


def choose_probe(
    catalog: Catalog,
    bar_type: BarType,
    calendar: str,
    requests: list[PlannedRequest],
    *,
    use_rth: bool,
    with_holes: Sequence[dt.date] = (),
) -> tuple[list[PlannedRequest], Probe | None]:
    """The stored session to re-ask for ``bar_type`` and ``requests`` with it folded in: a
    session with holes a request asks for anyway (stored bars, compared before the merge); else
    the session before the first request or after the last one when it holds bars and the request
    may grow; else the latest stored session on a request of its own; None when nothing is
    stored."""
    if not requests:
        return requests, None
    for day in with_holes:
        for k, req in enumerate(requests):
            if day in req.sessions:
                return requests, Probe(day, k, req)
    last = catalog.availability(bar_type).last_ns
    if last is None:
        return requests, None
    bar_size = requests[0].bar_size
    limit = _fold_limit(bar_size)
    first_req, last_req = requests[0], requests[-1]
    around = sessions_between(
        calendar,
        first_req.sessions[0] - dt.timedelta(days=10),
        last_req.sessions[-1] + dt.timedelta(days=10),
    )
    days = around.date_list()
    i = days.index(first_req.sessions[0])
    if i > 0 and len(first_req.sessions) < limit and _has_bars(catalog, bar_type, around, i - 1):
        grown = PlannedRequest(
            first_req.sessions,
            first_req.end_utc,
            f"{len(first_req.sessions) + 1} D",
            bar_size,
            first_req.use_rth,
        )
        return [grown, *requests[1:]], Probe(days[i - 1], 0, grown)
    j = days.index(last_req.sessions[-1])
    if (
        j + 1 < len(days)
        and len(last_req.sessions) < limit
        and _has_bars(catalog, bar_type, around, j + 1)
    ):
        end_ns = (around.close_ns if use_rth else around.ext_close_ns)[j + 1]
        grown = PlannedRequest(
            last_req.sessions,
            pd.Timestamp(int(end_ns), tz="UTC").to_pydatetime(),
            f"{len(last_req.sessions) + 1} D",
            bar_size,
            last_req.use_rth,
        )
        return [*requests[:-1], grown], Probe(days[j + 1], len(requests) - 1, grown)
    tz = calendar_timezone(calendar)
    day = local_dates(np.array([last - 1], dtype=np.int64), tz)[0].item()
    alone = plan([day], calendar=calendar, bar_size=bar_size, use_rth=use_rth, chunk_sessions=1)
    if not alone:  # the last bar is on no session of the calendar (an imported oddity)
        return requests, None
    return requests, Probe(day, None, alone[0])


# ------------------------------------------------------------------------------ comparing
def _verdict(measured: float | None, tolerance: float) -> tuple[str, Fraction | None]:
    if measured is None:
        return "unverified", None
    if abs(measured - 1.0) <= tolerance:
        return "same", None
    ratio = nearest_split_ratio(measured, tolerance)
    return ("split", ratio) if ratio is not None else ("differs", None)


def compare_session(
    stored: BarFrame, answer: BarFrame, tolerance: float, *, session: dt.date, how: str
) -> tuple[ScaleCheck, Fraction | None]:
    """Stored bars of one session against IB's answer for it, bar by bar on equal ``ts_event``."""
    common, a, b = np.intersect1d(stored.ts_event, answer.ts_event, return_indices=True)
    measured = None
    if common.size:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.concatenate(
                [
                    getattr(stored, c)[a] / getattr(answer, c)[b]
                    for c in ("open", "high", "low", "close")
                ]
            )
        ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
        measured = float(np.median(ratios)) if ratios.size else None
    verdict, ratio = _verdict(measured, tolerance)
    check = ScaleCheck(
        session.isoformat(),
        how,
        int(common.size),
        None if measured is None else round(measured, 6),
        verdict,
        None if ratio is None else ratio_label(ratio),
    )
    return check, ratio


def probe_check(
    catalog: Catalog,
    bar_type: BarType,
    equity: Equity,
    probe: Probe,
    bars: list[BarData],
    calendar: str,
    tolerance: float,
) -> tuple[ScaleCheck, Fraction | None]:
    """The probe session's stored bars against the bars IB answered for it."""
    tz = calendar_timezone(calendar)
    answer = to_frame(bars, bar_type, equity, {probe.session}, tz)
    s = sessions_between(calendar, probe.session, probe.session)
    lo = int(s.midnight_ns[0])
    stored = catalog.read(bar_type, lo + 1, lo + 86_400 * 10**9)
    how = "request" if probe.index is None else "folded"
    return compare_session(stored, answer, tolerance, session=probe.session, how=how)


# ------------------------------------------------------------------------------ localizing
def daily_request(first: dt.date, calendar: str, today: dt.date) -> PlannedRequest:
    """Daily TRADES bars (regular hours) from ``first`` to now: ``N D`` up to a year, else
    ``N Y`` (IB refuses day durations over 365)."""
    n = len(sessions_between(calendar, first, today))
    days = (today - first).days + 1
    duration = f"{n + 5} D" if n + 5 <= MAX_DURATION_DAYS else f"{days // 365 + 1} Y"
    return PlannedRequest((), None, duration, "1 day", True)


def stored_daily(frame: BarFrame, sessions: Sessions, *, daily: bool) -> dict[dt.date, np.ndarray]:
    """Per session of ``sessions``: (open, high, low, close) of the stored bars closing inside its
    regular hours (the window IB's daily TRADES bars cover)."""
    if not len(frame):
        return {}
    day = local_dates(frame.ts_event - 1, sessions.tz)
    idx = np.searchsorted(sessions.dates, day)
    idx[idx == len(sessions)] = 0
    keep = sessions.dates[idx] == day
    if not daily:
        opens, closes = sessions.window("regular")
        keep &= (frame.ts_event > opens[idx]) & (frame.ts_event <= closes[idx])
    f, idx = frame.take(keep), idx[keep]
    if not len(f):
        return {}
    starts = np.concatenate(([0], np.flatnonzero(np.diff(idx)) + 1))
    ends = np.append(starts[1:], len(f)) - 1
    high = np.maximum.reduceat(f.high, starts)
    low = np.minimum.reduceat(f.low, starts)
    return {
        sessions.dates[idx[s]].item(): np.array([f.open[s], high[k], low[k], f.close[e]])
        for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
    }


@dataclass
class Localized:
    """What the daily comparison found for one bar type."""

    ratios: dict[dt.date, Fraction]  # sessions in an older scale -> split ratio to divide by
    differs: dict[dt.date, float]  # sessions off by no split ratio (reported, not repaired)
    compared: int  # sessions compared


def localize(
    frame: BarFrame,
    ib: dict[dt.date, tuple[float, float, float, float]],
    calendar: str,
    *,
    daily: bool,
    tolerance: float,
) -> Localized:
    """Every stored session of ``frame`` IB's daily answer covers: its scale against IB's."""
    if not ib or not len(frame):
        return Localized({}, {}, 0)
    s = sessions_between(calendar, min(ib), max(ib))
    mine = stored_daily(frame, s, daily=daily)
    ratios: dict[dt.date, Fraction] = {}
    differs: dict[dt.date, float] = {}
    compared = 0
    for d, ohlc in mine.items():
        theirs = ib.get(d)
        if theirs is None:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            r = ohlc / np.asarray(theirs)
        r = r[np.isfinite(r) & (r > 0)]
        if not r.size:
            continue
        compared += 1
        verdict, ratio = _verdict(float(np.median(r)), tolerance)
        if verdict == "split" and ratio is not None:
            ratios[d] = ratio
        elif verdict == "differs":
            differs[d] = round(float(np.median(r)), 6)
    return Localized(ratios, differs, compared)


def instrument_bar_types(catalog: Catalog, instrument_id: str) -> list[BarType]:
    """The stored bar types of an instrument (every spec, every price type)."""
    out = []
    for name in catalog.bar_types():
        if name.rsplit("-", 4)[0] == instrument_id:
            out.append(BarType.from_str(name))
    return out


async def daily_answer(
    catalog: Catalog, bar_types: list[BarType], fetch: Fetch, calendar: str
) -> dict[dt.date, tuple[float, float, float, float]]:
    """IB's daily TRADES bars over the stored range of ``bar_types`` (one request)."""
    firsts = [a.first_ns for a in catalog.availability_many([str(b) for b in bar_types])]
    known = [f for f in firsts if f is not None]
    if not known:
        return {}
    tz = calendar_timezone(calendar)
    first = local_dates(np.array([min(known) - 1], dtype=np.int64), tz)[0].item()
    today = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return daily_ohlc(await fetch(daily_request(first, calendar, today), "TRADES"))


def bar_size_of(bar_type: BarType) -> str:
    return ib_bar_size(str(bar_type.spec))


def is_daily(bar_type: BarType) -> bool:
    return bar_step(bar_type).daily

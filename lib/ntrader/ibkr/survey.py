"""What a fetch target lacks: the sessions of its range without every expected bar in the
fetched hours, and which of them IB already answered "no data" for (``ntrader.ibkr.nodata``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from nautilus_trader.model.data import BarType

from ntrader.catalog.catalog import Catalog
from ntrader.ibkr import nodata
from ntrader.ibkr.nodata import NoData
from ntrader.ibkr.plan import session_fill
from ntrader.instruments import bar_step
from ntrader.sessions import calendar_timezone, sessions_between


@dataclass(frozen=True)
class FetchTarget:
    bar_type: BarType
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class Survey:
    """A target's sessions against the catalog: what to request and what IB already answered."""

    fetch: list[dt.date]  # sessions to request (calendar order)
    with_holes: list[dt.date]  # of those, sessions that have bars but holes
    known: list[NoData]  # incomplete sessions not requested: IB's earlier answer is trusted


def survey(
    catalog: Catalog,
    target: FetchTarget,
    calendar: str,
    *,
    use_rth: bool = True,
    known: dict[dt.date, NoData] | None = None,
) -> Survey:
    """Which sessions of [start, end] lack bars in the fetched hours (regular, or extended when
    not ``use_rth``), and which of those IB already answered for (``known``: the trusted nodata
    records; default: those of the catalog with the default expiry)."""
    sessions = sessions_between(calendar, target.start, target.end)
    if not len(sessions):
        return Survey([], [], [])
    tz = calendar_timezone(calendar)
    lo = int(pd.Timestamp(target.start, tz=tz).value) + 1
    hi = int((pd.Timestamp(target.end, tz=tz) + pd.Timedelta(days=1)).value)
    ts = catalog.read_ts_event(target.bar_type, lo, hi)
    step = bar_step(target.bar_type)
    hours = "regular" if use_rth else "extended"
    fills = session_fill(ts, sessions, step.interval_ns, daily=step.daily, hours=hours)
    records = nodata.current(catalog, str(target.bar_type)) if known is None else known
    fetch: list[dt.date] = []
    holes: list[dt.date] = []
    skipped: list[NoData] = []
    for f in fills:
        if f.complete:
            continue
        rec = records.get(f.session)
        # IB's earlier answer explains the gap: no data at all, or every hole was in its answer
        # (a session without any bar needs a no-data-at-all answer)
        if rec is not None and (
            rec.whole or (not f.empty and all(rec.covers(a, b) for a, b in f.holes))
        ):
            skipped.append(rec)
            continue
        fetch.append(f.session)
        if not f.empty:
            holes.append(f.session)
    return Survey(fetch, holes, skipped)


def missing_sessions(
    catalog: Catalog,
    target: FetchTarget,
    calendar: str,
    *,
    use_rth: bool = True,
    known: dict[dt.date, NoData] | None = None,
) -> list[dt.date]:
    """Sessions in [start, end] a fetch requests (see :func:`survey`)."""
    return survey(catalog, target, calendar, use_rth=use_rth, known=known).fetch

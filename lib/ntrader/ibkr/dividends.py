"""Dividend factors from IB: ADJUSTED_LAST daily bars against TRADES daily bars, both ending now.

IB's "Historical data types" (https://interactivebrokers.github.io/tws-api/historical_bars.html):
TRADES is adjusted for splits only, ADJUSTED_LAST for splits and dividends, and ADJUSTED_LAST
answers only requests that end now (an empty endDateTime; ib_insync #504). Two daily requests
per instrument over its stored range — asked only with ``corporate_actions.dividends=true``, not
by the nightly fetch by default — give the factor series :mod:`ntrader.catalog.factors` derives
and versions.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from ntrader.catalog.catalog import Catalog
from ntrader.catalog.factors import StoredFactors, derive_factors, store_factors
from ntrader.ibkr.answers import daily_ohlc
from ntrader.ibkr.verify import Fetch, daily_request, instrument_bar_types
from ntrader.sessions import calendar_timezone, local_dates

REQUESTS = 2  # TRADES + ADJUSTED_LAST, daily, regular hours, ending now
SOURCE = "ibkr: ADJUSTED_LAST / TRADES 1 day, regular hours, ending now"


async def refresh_factors(
    catalog: Catalog, instrument_id: str, fetch: Fetch, calendar: str, price_precision: int
) -> StoredFactors | None:
    """Ask IB for both daily series over the instrument's stored range and keep the factors
    (a new version when they changed); None when nothing is stored or IB sent no session."""
    bar_types = instrument_bar_types(catalog, instrument_id)
    firsts = [a.first_ns for a in catalog.availability_many([str(b) for b in bar_types])]
    known = [f for f in firsts if f is not None]
    if not known:
        return None
    tz = calendar_timezone(calendar)
    first = local_dates(np.array([min(known) - 1], dtype=np.int64), tz)[0].item()
    today = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    req = daily_request(first, calendar, today)
    trades = daily_ohlc(await fetch(req, "TRADES"))
    adjusted = daily_ohlc(await fetch(req, "ADJUSTED_LAST"))
    days = sorted(d for d in trades.keys() & adjusted.keys() if d >= first)
    if not days:
        return None
    half = 0.5 * 10.0**-price_precision
    series = derive_factors(
        instrument_id,
        days,
        np.array([trades[d] for d in days]),
        np.array([adjusted[d] for d in days]),
        half_base=half,
        half_adjusted=half,
        source=SOURCE,
    )
    return store_factors(catalog, series)

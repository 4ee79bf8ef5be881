"""Repair an instrument whose stored history a fetch found in an older split scale.

One daily TRADES request over the instrument's stored range tells, session by session and for
every stored bar type of the instrument, which sessions are off IB's current answer by a split
ratio (``ntrader.ibkr.verify.localize``). ``corporate_actions.on_change`` then:

* ``rescale`` — those sessions divided by their ratio, one commit per bar type, no request;
* ``refetch`` — those sessions asked again (the bar type's own bar size) and merged; bars IB no
  longer sends are rescaled, so no old-scale bar stays;
* ``fail`` — :class:`~ntrader.errors.DataError` (exit 1) naming the sessions and the ratio, before
  anything of the instrument is written.

Each distinct ratio is one :class:`~ntrader.catalog.corporate.SplitEvent`, recorded in the catalog.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from fractions import Fraction
from typing import Any

import numpy as np
from loguru import logger
from nautilus_trader.model.data import BarType
from nautilus_trader.model.instruments import Equity

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.corporate import (
    SplitEvent,
    ratio_label,
    record_event,
    rescale_frame,
    rescale_sessions,
)
from ntrader.errors import DataError
from ntrader.ibkr.answers import to_frame
from ntrader.ibkr.plan import plan, what_to_show
from ntrader.ibkr.verify import (
    CorporateActionPolicy,
    Fetch,
    Localized,
    bar_size_of,
    daily_answer,
    instrument_bar_types,
    is_daily,
    localize,
)
from ntrader.sessions import calendar_timezone, local_dates, sessions_between


def _span(days: list[dt.date]) -> str:
    return f"{days[0]}" if len(days) == 1 else f"{days[0]} .. {days[-1]}"


async def repair_instrument(
    catalog: Catalog,
    instrument_id: str,
    equity: Equity,
    policy: CorporateActionPolicy,
    *,
    calendar: str,
    use_rth: bool,
    audit: Fetch,
    refetch: Fetch,
    detected_by: str,
) -> tuple[list[SplitEvent], dict[str, dict[str, float]]]:
    """Find and repair every stored session of ``instrument_id`` in an older split scale; the
    events recorded and, per bar type, the sessions off by no split ratio (not repaired)."""
    bar_types = instrument_bar_types(catalog, instrument_id)
    ib = await daily_answer(catalog, bar_types, audit, calendar)
    if not ib:
        logger.warning(f"{instrument_id}: IB sent no daily bars: the stored scale was not checked")
        return [], {}
    found: dict[BarType, Localized] = {}
    for bt in bar_types:
        found[bt] = localize(
            catalog.read(bt), ib, calendar, daily=is_daily(bt), tolerance=policy.tolerance
        )
    differs = {
        str(bt): {d.isoformat(): r for d, r in sorted(loc.differs.items())}
        for bt, loc in found.items()
        if loc.differs
    }
    groups: dict[Fraction, dict[BarType, dict[dt.date, Fraction]]] = defaultdict(dict)
    for bt, loc in found.items():
        for ratio in sorted(set(loc.ratios.values())):
            groups[ratio][bt] = {d: r for d, r in loc.ratios.items() if r == ratio}
    if not groups:
        return [], differs
    if policy.on_change == "fail":
        raise _refused(instrument_id, groups, max(ib))
    events = []
    tz = calendar_timezone(calendar)
    for ratio, per_type in sorted(groups.items()):
        repaired: dict[str, dict[str, Any]] = {}
        for bt, days in per_type.items():
            if policy.on_change == "refetch":
                done = await _refetch(catalog, bt, equity, days, refetch, calendar, use_rth)
            else:
                done = rescale_sessions(catalog, str(bt), days, tz)
            repaired[str(bt)] = done
        last_old = max(d for days in per_type.values() for d in days)
        after = sessions_between(calendar, last_old, max(ib)).date_list()
        event = SplitEvent(
            instrument=instrument_id,
            ratio=ratio,
            effective_after=last_old,
            effective_by=max(ib),
            detected_at=dt.datetime.now(dt.UTC),
            detected_by=detected_by,
            repair=policy.on_change,
            bar_types=repaired,
            pinned=len(after) == 2,  # the first new-scale session IB has is the next one
        )
        record_event(catalog, event)
        logger.warning(f"{event.describe()} (recorded in the catalog)")
        events.append(event)
    return events, differs


def _refused(
    instrument_id: str, groups: dict[Fraction, dict[BarType, dict[dt.date, Fraction]]], by: dt.date
) -> DataError:
    parts = []
    for ratio, per_type in sorted(groups.items()):
        days = sorted({d for ds in per_type.values() for d in ds})
        parts.append(
            f"{len(days)} session(s) ({_span(days)}) are {ratio_label(ratio)} off IB's answer now "
            f"(a split effective after {days[-1]}, by {by})"
        )
    return DataError(
        f"{instrument_id}: the stored history is in an older split scale: {'; '.join(parts)}. "
        f"Nothing of {instrument_id} was written (corporate_actions.on_change=fail)",
        hint='rerun with ARGS="corporate_actions.on_change=rescale" (prices / ratio, volumes x '
        'ratio, no request) or ARGS="corporate_actions.on_change=refetch" (asks IB again)',
    )


async def _refetch(
    catalog: Catalog,
    bar_type: BarType,
    equity: Equity,
    days: dict[dt.date, Fraction],
    fetch: Fetch,
    calendar: str,
    use_rth: bool,
) -> dict[str, Any]:
    """Ask IB again for ``days`` of ``bar_type``; a stored bar of those days IB did not send now is
    rescaled instead, so each written frame is wholly in the new scale."""
    tz = calendar_timezone(calendar)
    what = what_to_show(str(bar_type.spec))
    requests = plan(
        sorted(days), calendar=calendar, bar_size=bar_size_of(bar_type), use_rth=use_rth
    )
    fetched = rescaled = 0
    sessions: set[dt.date] = set()
    for req in requests:
        incoming = to_frame(await fetch(req, what), bar_type, equity, set(req.sessions), tz)
        span = sessions_between(calendar, req.sessions[0], req.sessions[-1])
        lo, hi = int(span.midnight_ns[0]), int(span.midnight_ns[-1]) + 86_400 * 10**9
        stored = catalog.read(bar_type, lo + 1, hi)
        day = local_dates(stored.ts_event - 1, tz)
        wanted = np.isin(day, np.array(req.sessions, dtype="datetime64[D]"))
        left = stored.take(wanted & ~np.isin(stored.ts_event, incoming.ts_event))
        if len(left):
            ldays = local_dates(left.ts_event - 1, tz)
            table = np.array(
                [[days[d.item()].numerator, days[d.item()].denominator] for d in ldays],
                dtype=np.int64,
            )
            left = rescale_frame(left, table)
        both = BarFrame.concat([incoming, left]) if len(left) else incoming
        if len(both):
            both = both.take(np.argsort(both.ts_event, kind="stable"))
            catalog.write_bars(bar_type, both, mode="merge")
        fetched += len(incoming)
        rescaled += len(left)
        sessions |= set(req.sessions)
    got = sorted(sessions)
    return {
        "sessions": len(got),
        "first": got[0].isoformat() if got else None,
        "last": got[-1].isoformat() if got else None,
        "bars": fetched + rescaled,
        "refetched_bars": fetched,
        "rescaled_bars": rescaled,
        "requests": len(requests),
    }

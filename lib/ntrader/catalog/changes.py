"""What changed in a bar type between two catalog versions, bar by bar and per session: what a
rerun whose data changed since the original run reports (``make rerun``).

Both versions are read over the same ``ts_event`` range (the rows the original run read) and
matched by ``ts_event``: bars only in the old version were removed, bars only in the new one were
added, bars in both with another open, high, low, close or volume were changed. Each is counted
under its session (the exchange-local date of ``ts_event - 1 ns``, the bar's close).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ntrader.catalog.barframe import COLUMNS
from ntrader.errors import InputError
from ntrader.sessions import calendar_for_venue, calendar_timezone, local_dates

if TYPE_CHECKING:
    from ntrader.catalog.catalog import Catalog

LISTED = 10  # sessions listed in the console (summary.json lists all)


def _tz(bar_type: str) -> str:
    venue = bar_type.split("-", 1)[0].rsplit(".", 1)[-1]
    try:
        return calendar_timezone(calendar_for_venue(venue))
    except InputError:
        return "UTC"


def bar_changes(
    then: Catalog, now: Catalog, bar_type: str, lo: int | None, hi: int | None
) -> dict[str, Any]:
    """Bars removed, added and changed from ``then`` to ``now`` in ``[lo, hi]``, per session."""
    a, b = then.read(bar_type, lo, hi), now.read(bar_type, lo, hi)
    common, ia, ib = np.intersect1d(a.ts_event, b.ts_event, assume_unique=True, return_indices=True)
    differs = np.zeros(len(common), dtype=bool)
    for col in COLUMNS:
        differs |= getattr(a, col)[ia] != getattr(b, col)[ib]
    kinds = {
        "removed": np.setdiff1d(a.ts_event, common, assume_unique=True),
        "added": np.setdiff1d(b.ts_event, common, assume_unique=True),
        "changed": common[differs],
    }
    tz = _tz(bar_type)
    sessions: dict[str, dict[str, int]] = {}
    for kind, ts in kinds.items():
        days, counts = np.unique(local_dates(ts - 1, tz), return_counts=True)
        for day, n in zip(days, counts, strict=True):
            sessions.setdefault(str(day), {"removed": 0, "added": 0, "changed": 0})[kind] = int(n)
    return {
        "rows_then": len(a),
        "rows_now": len(b),
        **{f"bars_{k}": len(v) for k, v in kinds.items()},
        "sessions": [{"session": d, **c} for d, c in sorted(sessions.items())],
    }


def render_changes(changes: dict[str, Any]) -> list[str]:
    """Console lines for :func:`bar_changes`: the totals and the first sessions."""
    s = changes["sessions"]
    lines = [
        f"{changes['rows_then']:,} -> {changes['rows_now']:,} rows in the range read; bars "
        f"{changes['bars_changed']} changed, {changes['bars_added']} added, "
        f"{changes['bars_removed']} removed in {len(s)} session(s)"
    ]
    for row in s[:LISTED]:
        what = ", ".join(f"{row[k]} {k}" for k in ("changed", "added", "removed") if row[k])
        lines.append(f"session {row['session']}: {what}")
    if len(s) > LISTED:
        lines.append(f"… and {len(s) - LISTED} more session(s) (summary.json lists all)")
    return lines

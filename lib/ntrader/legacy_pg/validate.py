"""Validation of a migrated symbol: source vs catalog row count, first/last ``ts_event`` and
seeded random OHLCV spot checks at the instrument's precision.

Memory stays bounded: counts come from the ``ts_event`` column alone, spot-checked bars are read
file by file, the source rows of the picks in one query.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from nautilus_trader.model.data import BarType

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.inventory import iso
from ntrader.legacy_pg.plan import Options, Plan
from ntrader.legacy_pg.rows import TimeMap, convert
from ntrader.legacy_pg.source import Source


def _catalog_keys(catalog: Catalog, bt: BarType, lo: int | None, hi: int | None) -> np.ndarray:
    """``ts_event`` of the catalog bars in [lo, hi] (the column alone: bounded memory)."""
    return catalog.read_ts_event(bt, lo, hi)


def _bars_at(catalog: Catalog, bt: BarType, picks: np.ndarray) -> BarFrame:
    """The catalog bars at the sorted ``picks`` (what ``catalog.read(bt, t, t)`` per pick gives,
    concatenated), reading each file once for all the picks it holds, not once per pick."""
    files = catalog.files(bt)
    groups: dict[int, list[int]] = {}
    for t in picks.tolist():
        i = next((k for k, f in enumerate(files) if f.overlaps(t, t)), -1)
        groups.setdefault(i, []).append(t)
    parts: list[BarFrame] = []
    for i in sorted(groups):
        ts = groups[i]
        if i < 0:  # in no file (listing raced a writer): the per-pick read, as before
            parts += [catalog.read(bt, t, t) for t in ts]
            continue
        frame = catalog.read(bt, ts[0], ts[-1])
        parts.append(frame.take(np.flatnonzero(np.isin(frame.ts_event, ts))))
    return BarFrame.concat(parts) if parts else BarFrame.empty()


def validate_symbol(
    plan: Plan, source: Source, catalog: Catalog, tmap: TimeMap, opts: Options
) -> dict[str, Any]:
    """Source vs catalog for one symbol: counts, first/last, seeded OHLCV spot checks.

    Memory stays bounded: counts come from the ``ts_event`` column alone, spot-checked bars are
    read file by file.
    """
    assert plan.bar_type is not None
    daily = tmap.step.daily
    keys = _catalog_keys(catalog, plan.bar_type, plan.first_ns, plan.last_ns)
    problems: list[str] = []
    expected = plan.stats.expected
    if len(keys) != expected:
        problems.append(f"catalog has {len(keys):,} rows in the range, source {expected:,}")
    cat_first = int(keys[0]) if len(keys) else None
    cat_last = int(keys[-1]) if len(keys) else None
    if not plan.stats.conflicting_ts and (cat_first, cat_last) != (plan.first_ns, plan.last_ns):
        problems.append("first/last timestamp differ")
    rng = np.random.default_rng([int(opts.seed), zlib.crc32(plan.symbol.encode())])
    picks = np.sort(
        keys[rng.choice(len(keys), size=min(opts.spot_checks, len(keys)), replace=False)]
    )
    checked = 0
    if len(picks):
        frame = _bars_at(catalog, plan.bar_type, picks)
        ranges = [tmap.source_range(int(t)) for t in frame.ts_event]
        conv = convert(
            source.fetch_ranges(plan.symbol, ranges),
            tmap,
            frame.price_precision,
            frame.size_precision,
        )
        src = conv.frame
        for i in range(len(frame)):
            ts = int(frame.ts_event[i])
            j = int(np.searchsorted(src.ts_event, ts))
            when = iso(ts, tmap.zone, daily=daily)
            if j >= len(src) or int(src.ts_event[j]) != ts:
                problems.append(f"spot check {when}: no source row")
                continue
            for col in ("open", "high", "low", "close", "volume"):
                digits = frame.size_precision if col == "volume" else frame.price_precision
                a, b = getattr(frame, col)[i], getattr(src, col)[j]
                if round(a * 10**digits) != round(b * 10**digits):
                    problems.append(f"spot check {when}: {col} catalog {a} source {b}")
            checked += 1
    return {
        "source_rows": plan.stats.total,
        "expected_rows": expected,
        "catalog_rows": len(keys),
        "source_first": iso(plan.first_ns, tmap.zone, daily=daily),
        "source_last": iso(plan.last_ns, tmap.zone, daily=daily),
        "catalog_first": iso(cat_first, tmap.zone, daily=daily),
        "catalog_last": iso(cat_last, tmap.zone, daily=daily),
        "spot_checks": checked,
        "problems": problems,
        "status": "mismatch" if problems else "ok",
    }

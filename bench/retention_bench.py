"""The retention benchmark of ``bench/run.py`` (:func:`bench_retention`, issue 15): what keeping
the files commits remove for ``catalog.retain_days`` (default 30) costs in storage.

N symbols, each holding the year before as one compacted file per symbol (what compaction by
year leaves), then M nightly appends of one RTH session of 1-minute bars each — one
``write_bars`` per symbol and night, the commit a nightly ``make fetch`` makes, with automatic
compaction as configured. Reported after the last night: the live data (``data/``), the retained
history (``.ntrader/history``: the overhead), the commit log (``.ntrader/log``), against the live
data; for the default ``catalog.compact_threshold`` (64 files: 30 nights never reach it, so
appends retain nothing) and for a threshold low enough that compaction runs within the month (each
compaction rewrites the year's file; the one it replaces is retained). ``make gc`` with
``catalog.retain_days=0`` at the end shows what pruning gives back.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np

from bench.harness import Context, Row, progress
from ntrader.catalog import Catalog
from ntrader.catalog.barframe import random_walk_frame
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.sessions import expected_bar_closes, sessions_between

MINUTE_NS = 60_000_000_000


def _bytes(root: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in root.rglob(pattern) if p.is_file())


def _nights(ctx: Context, name: str, threshold: int) -> dict[str, float]:
    symbols, nights = ctx.sizes.retention
    year = sessions_between("XNYS", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    after = sessions_between("XNYS", dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    root = ctx.fresh_dir(name)
    catalog = Catalog(root, compact_threshold=threshold)  # retain_days: the default, 30
    closes = expected_bar_closes(year, MINUTE_NS)
    night_closes = expected_bar_closes(after, MINUTE_NS)
    session_of = np.searchsorted(after.close_ns, night_closes, side="left")
    types = []
    for i in range(symbols):
        iid = resolve_instrument_id(f"R{i:02d}")
        bt, eq = bar_type_for(iid, "1-MINUTE-LAST"), make_equity(iid, 2)
        walk = random_walk_frame(np.concatenate([closes, night_closes]), seed=i + 1)
        catalog.write_bars(bt, walk.take(slice(0, len(closes))), instrument=eq)
        types.append((bt, walk.take(slice(len(closes), None))))
    base = _bytes(root / "data")
    t0 = time.perf_counter()
    for night in range(nights):
        for bt, rest in types:
            catalog.write_bars(bt, rest.take(np.flatnonzero(session_of == night)))
    wall = time.perf_counter() - t0
    out = {
        "live": _bytes(root / "data"),
        "base": base,
        "history": _bytes(root / ".ntrader" / "history", "*.parquet"),
        # the commit log, and the commit records kept with the retained files
        "log": _bytes(root / ".ntrader" / "log") + _bytes(root / ".ntrader" / "history", "*.json"),
        "commits": catalog.history.log.head(),
        "wall_s": wall,
    }
    pruned = Catalog(root, retain_days=0).gc()
    out["gc_bytes"] = pruned.bytes
    out["history_after_gc"] = _bytes(root / ".ntrader" / "history", "*.parquet")
    return out


def bench_retention(ctx: Context) -> None:
    symbols, nights = ctx.sizes.retention
    for name, threshold, what in (
        ("retention-default", 64, "default catalog.compact_threshold=64"),
        ("retention-compacting", 8, "catalog.compact_threshold=8 (compaction within the month)"),
    ):
        progress(f"retention: {symbols} symbols × {nights} nightly appends, {what}")
        r = _nights(ctx, name, threshold)
        mb = lambda b: f"{b / 1e6:.1f} MB"  # noqa: E731
        overhead = r["history"] / r["live"]
        ctx.results.check(
            r["history_after_gc"] == 0 and r["gc_bytes"] == r["history"],
            f"retention {what}: make gc (retain_days=0) freed {mb(r['gc_bytes'])}, "
            f"{mb(r['history_after_gc'])} retained after it",
        )
        ctx.add(
            Row(
                "retention",
                f"retention: storage after {nights} nightly fetches of {symbols} symbols (a "
                f"compacted year each), {what}, catalog.retain_days=30: retained history + log",
                f"{mb(r['history'])} retained + {r['log'] / 1e3:.0f} KB log "
                f"({int(r['commits'])} commits; {r['wall_s']:.0f} s of commits)",
                f"live data {mb(r['live'])}",
                f"+{overhead:.0%} storage" + ("" if r["history"] else " (add-only commits)"),
                "",
                None,
                r,
            )
        )

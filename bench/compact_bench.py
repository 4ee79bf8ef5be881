"""The compact benchmark of ``bench/run.py``: a symbol-year of daily appends, before and after
compaction.

One symbol's RTH 1-minute bars over the backtest range (252 XNYS sessions in full), written the
way the daily cron does: one ``write_bars`` per session, so one file per session (automatic
compaction off). ``Catalog.read_bars`` of the whole range on that catalog, on the same catalog
after ``Catalog.compact(period="month")`` (12 files), then after ``period="year"`` (the default:
one file), and on the reference: the same bars written in
one call (one file). Also the cost of one more daily append (the next session) on either catalog,
and of the compaction itself. Medians of the repetitions, in-process.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import Context, Row, progress, secs, timed
from ntrader.catalog import Catalog
from ntrader.catalog.barframe import random_walk_frame
from ntrader.instruments import make_equity
from ntrader.sessions import expected_bar_closes, sessions_between

MINUTE_NS = 60_000_000_000
TARGET = 1.2  # compacted read_bars vs the single-file catalog


def _median(t: Any) -> float:
    return float(statistics.median(t.runs))


def bench_compact(ctx: Context) -> None:
    first, last = ctx.sizes.backtest_range
    sessions = sessions_between("XNYS", first, last)
    closes = expected_bar_closes(sessions, MINUTE_NS)
    bars = random_walk_frame(closes, seed=13)
    per_session = np.searchsorted(sessions.close_ns, closes, side="left")
    n_sessions = len(sessions.close_ns)
    bt, eq = str(ctx.bar_type), make_equity(ctx.iid, 2)
    daily_root, single_root = ctx.fresh_dir("compact-daily"), ctx.fresh_dir("compact-single")
    progress(f"compact: {n_sessions} daily appends of {len(closes):,} bars (untimed)")
    t0 = time.perf_counter()
    daily = Catalog(daily_root, compact_threshold=0)
    for s in range(n_sessions):
        daily.write_bars(bt, bars.take(np.flatnonzero(per_session == s)), instrument=eq)
    progress(f"compact: written in {time.perf_counter() - t0:.1f} s")
    single = Catalog(single_root, compact_threshold=0)
    single.write_bars(bt, bars, instrument=eq)
    reps = max(ctx.reps, 5)  # medians of at least 5

    # The next session's append: on a fresh copy of the catalog each time (copy untimed).
    nxt = bars.take(np.flatnonzero(per_session == n_sessions - 1))
    nxt = nxt.__class__(nxt.ts_event + 86_400_000_000_000 * 3, *_values(nxt))

    def append_on(root: Path) -> Any:
        copy = ctx.fresh_dir("compact-append")
        shutil.copytree(root, copy)
        return (Catalog(copy, compact_threshold=0),)

    t_app_before, _ = timed(lambda c: c.write_bars(bt, nxt), reps, lambda: append_on(daily_root))
    files_before = len(daily.files(bt))
    progress(f"compact: read_bars x{reps}: {files_before} daily files / single file")
    for c in (daily, single):
        c.read_bars(bt)  # warm-up
    t_daily, got_daily = timed(lambda: daily.read_bars(bt), reps)
    t_single, got_single = timed(lambda: single.read_bars(bt), reps)

    def compact(period: str) -> Any:
        return Catalog(daily_root, compact_threshold=0).compact(period=period)

    t_compact, result = timed(lambda: compact("month"), 1)
    files_month = len(daily.files(bt))
    daily.read_bars(bt)
    t_month, got_month = timed(lambda: daily.read_bars(bt), reps)
    compact("year")
    files_after = len(daily.files(bt))
    daily.read_bars(bt)
    t_compacted, got_compacted = timed(lambda: daily.read_bars(bt), reps)
    t_app_after, _ = timed(lambda c: c.write_bars(bt, nxt), reps, lambda: append_on(daily_root))

    ref = _median(t_single)
    compacted = _median(t_compacted) / ref
    for what, t, key in (
        (f"{len(closes):,} bars in {files_before} daily files (uncompacted)", t_daily, "daily_s"),
        (f"after compaction by month ({files_before} -> {files_month} files)", t_month, "month_s"),
    ):
        ratio = _median(t) / ref
        ctx.add(
            Row(
                "compact",
                f"compact: read_bars, {what}",
                secs(_median(t)),
                f"{secs(ref)} (1 file)",
                f"{ratio:.2f}x",
                "—",
                None,
                {key: t.runs, "single_s": t_single.runs, "ratio": ratio},
            )
        )
    ctx.add(
        Row(
            "compact",
            f"compact: read_bars after compaction by year ({files_before} -> {files_after} files)",
            secs(_median(t_compacted)),
            f"{secs(ref)} (1 file)",
            f"{compacted:.2f}x",
            f"≤ {TARGET}x",
            compacted <= TARGET,
            {"compacted_s": t_compacted.runs, "single_s": t_single.runs, "ratio": compacted},
            probe=lambda: daily.read_bars(bt),
        )
    )
    ctx.add(
        Row(
            "compact",
            f"compact: one more daily append (commit), {files_after} vs {files_before} files",
            secs(_median(t_app_after)),
            f"{secs(_median(t_app_before))} (uncompacted)",
            f"{_median(t_app_before) / _median(t_app_after):.1f}x cheaper",
            "—",
            None,
            {"after_s": t_app_after.runs, "before_s": t_app_before.runs},
        )
    )
    ctx.add(
        Row(
            "compact",
            f"compact: Catalog.compact(period=month), {files_before} -> {files_month} files",
            secs(t_compact.best),
            "",
            f"{result.groups_merged} commits",
            "—",
            None,
            {"s": t_compact.runs, "result": result.as_dict()},
        )
    )
    texts = [[str(b) for b in got] for got in (got_daily, got_month, got_compacted, got_single)]
    same = all(t == texts[-1] for t in texts) and len(got_single) == len(closes)
    months, years = len(set(_months(sessions))), len({m[:4] for m in _months(sessions)})
    ctx.results.check(
        same and (files_month, files_after) == (months, years),
        f"compact: {len(got_single):,} Bars identical (str) uncompacted / by month / by year / "
        f"single file; {files_before} -> {files_month} -> {files_after} files",
    )


def _values(f: Any) -> tuple[Any, ...]:
    return (f.open, f.high, f.low, f.close, f.volume, f.price_precision, f.size_precision)


def _months(sessions: Any) -> list[str]:
    return [str(d)[:7] for d in sessions.dates]

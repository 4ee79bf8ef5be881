"""The big streaming benchmark of ``bench/run.py`` (:func:`bench_stream_big`, issue 13 §2): the
100 symbols × 5 years of RTH 1-minute bars the issue asks to run within this machine's 24 GB,
run for real (full size; ~49M bars, about an hour on 2 cores), not projected.

The same whole-process measurement as the ``stream`` area (``scripts/backtest.py``, its peak RSS
from ``VmHWM``): the streamed run of every symbol over the whole range against the same symbols
over their first month (the base: interpreter, engine, instruments, strategies). The one-shot
load is not run at this size: at the ``stream`` area's one-shot MiB per million bars it would
need more memory than the machine has — which is the point of streaming.
"""

from __future__ import annotations

import datetime as dt

from bench.harness import Context, Row, progress
from bench.stream_bench import MACHINE_GIB, TARGET_MIB_PER_M, _catalog, _month_later, _process


def bench_stream_big(ctx: Context) -> None:
    symbols, years = ctx.sizes.stream_big
    first, last = dt.date(2025 - years, 1, 1), dt.date(2024, 12, 31)
    label = f"{symbols} symbols × {years} years"
    progress(f"stream_big: writing the catalog of {label} (one file per symbol)")
    root = _catalog(ctx, "stream-big", symbols, first, last)
    small = _catalog(ctx, "stream-big-base", symbols, first, _month_later(first))
    progress(f"stream_big: {label}, streamed, and its first month")
    base = _process(ctx, small, symbols, first, _month_later(first), None)
    full = _process(ctx, root, symbols, first, last, None)
    res = full["result"]
    bars = int(res["bars"])
    more = bars - int(base["result"]["bars"])
    per_m = (full["rss_mib"] - base["rss_mib"]) / more * 1e6
    peak_gib = full["rss_mib"] / 1024
    ctx.results.check(
        bars > 0 and int(res.get("fills") or 0) > 0,
        f"stream_big {label}: {bars} bars read, {res.get('fills')} fills, PnL {res.get('pnl')}",
    )
    ctx.add(
        Row(
            "stream_big",
            f"backtest {label} RTH ({bars / 1e6:.1f}M bars, {res.get('fills')} fills), streamed:"
            " peak RSS of the process, run for real",
            f"{peak_gib:.2f} GiB peak; {per_m:.0f} MiB/M bars above its first month (base "
            f"{base['rss_mib']:.0f} MiB); {full['cpu_s'] / 60:.0f} cpu-min, "
            f"{full['wall_s'] / 60:.0f} min wall",
            f"this machine: {MACHINE_GIB} GiB",
            f"{peak_gib / MACHINE_GIB:.0%} of it",
            f"fits in {MACHINE_GIB} GiB, ≤ {TARGET_MIB_PER_M:.0f} MiB per million bars",
            peak_gib < MACHINE_GIB and per_m <= TARGET_MIB_PER_M,
            {"base": base, "full": full, "bars": bars},
        )
    )

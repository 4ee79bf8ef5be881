"""The check benchmark of ``bench/run.py``: gap and health check of one bar type over years.

``check_bar_type`` with the exchange calendar cached and built cold, and ``scripts/scan.py
symbol=…`` as a subprocess, net of the start-up reference. The generated catalog has known
dropped sessions and intraday runs, so the gaps found are checked exactly.
"""

from __future__ import annotations

import json
import time
from typing import Any

import exchange_calendars as xc
from nautilus_trader.model.data import BarType

from bench import gen
from bench.harness import PY, Context, Row, progress, run_cmd, secs, timed
from ntrader.quality import check_bar_type
from ntrader.sessions import clear_calendar_cache


def bench_check(ctx: Context) -> None:
    s = ctx.sizes
    start, end = s.check_range
    progress(f"check: writing RTH 1-min bars {start} .. {end} (XNYS) with gaps")
    t0 = time.perf_counter()
    data = gen.check_catalog(
        ctx.fresh_dir("check"),
        start=start,
        end=end,
        drop_sessions=s.check_drop_sessions,
        drop_runs=s.check_drop_runs,
    )
    progress(
        f"check: {data.bars_written:,} bars over {data.sessions} sessions in {data.files} "
        f"files ({time.perf_counter() - t0:.1f} s); dropped sessions "
        f"{', '.join(map(str, data.dropped_sessions))}; {data.intraday_runs} intraday runs"
    )
    catalog = data.catalog
    bt = BarType.from_str(f"{data.symbol}-1-MINUTE-LAST-EXTERNAL")

    def check() -> Any:
        return check_bar_type(catalog, bt, start=start, end=end)

    def cold_check() -> Any:
        clear_calendar_cache()
        # exchange_calendars keeps its own cache of built calendars (import stays warm).
        getattr(xc.calendar_utils.global_calendar_dispatcher, "_factory_output_cache", {}).clear()
        return check()

    check()
    t_warm, report = timed(check, ctx.reps)
    t_cold, _ = timed(cold_check, ctx.reps)
    years = (end - start).days / 365.25
    label = f"{years:.0f} years" if years >= 1 else f"{(end - start).days} days"
    ctx.add(
        Row(
            "check",
            f"check: check_bar_type, {label} RTH 1-min (calendar cached)",
            secs(t_warm.best),
            "",
            f"{data.bars_written / t_warm.best:,.0f} bars/s",
            "≤ 0.5 s",
            t_warm.best <= 0.5,
            {"s": t_warm.runs, "bars": data.bars_written},
            probe=check,
        )
    )
    ctx.add(
        Row(
            "check",
            "check: same, calendar built cold (import warm)",
            secs(t_cold.best),
            "",
            f"calendar build ≈ {secs(t_cold.best - t_warm.best)}",
            "≤ 0.5 s",
            t_cold.best <= 0.5,
            {"s": t_cold.runs},
            probe=cold_check,
        )
    )
    g = report.gaps
    ok = (
        g.sessions_expected == data.sessions
        and g.sessions_missing == len(data.dropped_sessions)
        and len(g.missing_sessions) == data.missing_session_ranges
        and len(g.intraday_gaps) == data.intraday_runs
        and g.bars_present == data.bars_written
        and g.bars_missing == data.bars_expected - data.bars_written
    )
    ctx.results.check(
        ok,
        f"check: {g.sessions_present}/{g.sessions_expected} sessions, "
        f"{len(g.missing_sessions)} missing-session ranges (expected "
        f"{data.missing_session_ranges}), {len(g.intraday_gaps)} intraday gaps (expected "
        f"{data.intraday_runs}), {g.bars_present:,}/{g.bars_expected:,} bars, "
        f"{len(report.health)} health issue(s)",
    )

    startup = ctx.startup()
    cmd = [
        PY,
        "scripts/scan.py",
        f"symbol={data.symbol}",
        f"catalog.path={catalog.root}",
        f"start={start}",
        f"end={end}",
        "format=json",
    ]
    progress(f"check: scripts/scan.py symbol=… subprocess x{ctx.reps}")
    t_sub, proc = timed(lambda: run_cmd(cmd, ctx.env), ctx.reps)
    net = t_sub.best - startup.best
    ctx.add(
        Row(
            "check",
            f"check: scripts/scan.py symbol={data.symbol} (subprocess)",
            secs(t_sub.best),
            f"{secs(startup.best)} (empty catalog)",
            f"net {secs(net)}",
            "net ≤ 0.5 s",
            net <= 0.5,
            {"s": t_sub.runs, "startup_s": startup.runs, "net_s": net},
            probe_cmd=cmd,
        )
    )
    out = json.loads(proc.stdout)
    ctx.results.check(
        len(out["gaps"]) == data.missing_session_ranges + data.intraday_runs,
        f"check: scripts/scan.py listed {len(out['gaps'])} gaps",
    )

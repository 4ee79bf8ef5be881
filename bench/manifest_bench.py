"""The manifest benchmark of ``bench/run.py`` (:func:`bench_manifest`, issue 15): what writing
``manifest.json`` costs a backtest over years of 1-minute bars.

One symbol, RTH 1-minute random walks, one file per year (what compaction by year leaves), the
default strategy: the same backtest in process without the data manifest, with it and a cold
hash cache (every file hashed), and with it from the warm cache — side by side; the cached cost
against the run's wall time must stay within 2 %. The whole process (``scripts/backtest.py``)
reports its ``timings.manifest`` (+ the manifest's ``code_s``: git and versions) against its
wall time the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import REPO, Context, Row, progress

TARGET_PCT = 2.0


def _catalog(ctx: Context, years: int, months: int) -> tuple[Path, int]:
    from tests.backtest_fixtures import make_catalog

    root = ctx.work / f"manifest-{years}y"
    for y in range(2025 - years, 2025):
        last = dt.date(y, 12, 31) if months == 12 else dt.date(y, months + 1, 1) - dt.timedelta(1)
        make_catalog(root, "MAN", dt.date(y, 1, 1), last, seed=y)
    files = len(list((root / "data" / "bar").rglob("*.parquet")))
    return root, files


def _in_process(root: Path, years: int, manifest: bool) -> dict[str, Any]:
    from ntrader.backtest import BacktestSpec, StrategySpec, run_backtest

    ema = "nautilus_trader.examples.strategies.ema_cross_long_only"
    strategy = StrategySpec(
        f"{ema}:EMACrossLongOnly",
        f"{ema}:EMACrossLongOnlyConfig",
        {"trade_size": 10, "fast_ema_period": 10, "slow_ema_period": 20},
    )
    spec = BacktestSpec.of(
        "MAN",
        strategy,
        start=f"{2025 - years}-01-01",
        end="2024-12-31",
        allow_missing_sessions=True,  # quick: a month of each year
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    result = run_backtest(
        spec, root, tearsheet=False, equity_png=False, timings=timings, manifest_data=manifest
    )
    wall = time.perf_counter() - t0
    cache = result.manifest.get("data", {}).get("hash_cache", {})
    return {
        "wall_s": wall,
        "manifest_s": timings.get("manifest", 0.0),
        "bars": result.bars,
        "pnl": result.summary["pnl"],
        "cache": cache,
    }


def _process(ctx: Context, root: Path, years: int, cache: Path) -> dict[str, Any]:
    runs = ctx.fresh_dir("manifest-runs")
    env = {**ctx.env, "NTRADER_RUNS": str(runs), "NTRADER_CACHE": str(cache)}
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "backtest.py"),
        f"catalog.path={root}",
        "symbol=MAN",
        f"dates.start={2025 - years}-01-01",
        "dates.end=2024-12-31",
        "ibkr.auto_fetch=false",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "strategy.params.trade_size=10",
        "data.allow_missing_sessions=true",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"backtest failed: {done.stderr[-2000:]}")
    (summary,) = runs.rglob("summary.json")
    s = json.loads(summary.read_text())
    m = json.loads((summary.parent / "manifest.json").read_text())
    return {"wall_s": wall, "manifest_s": s["timings"].get("manifest", 0.0) + m["code_s"]}


def bench_manifest(ctx: Context) -> None:
    years, months = ctx.sizes.manifest_years
    root, files = _catalog(ctx, years, months)
    cache = ctx.fresh_dir("manifest-cache")
    os.environ["NTRADER_CACHE"] = str(cache)
    progress(f"manifest: backtest over {years} years of 1-min bars ({files} files), x{ctx.reps}")
    plain = min(
        (_in_process(root, years, False) for _ in range(ctx.reps)), key=lambda r: r["wall_s"]
    )
    cold = _in_process(root, years, True)  # the first run hashes every file
    warm = min((_in_process(root, years, True) for _ in range(ctx.reps)), key=lambda r: r["wall_s"])
    ctx.results.check(
        plain["pnl"] == warm["pnl"] == cold["pnl"]
        and cold["cache"]["misses"] == files
        and warm["cache"]["hits"] == files,
        f"manifest: same PnL with and without it; cold cache {cold['cache']}, warm {warm['cache']}",
    )
    pct = 100 * warm["manifest_s"] / warm["wall_s"]
    what = f"backtest {years} years x 1 symbol RTH 1-min ({plain['bars']:,} bars, {files} files)"
    ctx.add(
        Row(
            "manifest",
            f"manifest: data manifest cost in process, {what}, hashes cached vs the run without it",
            f"{warm['manifest_s'] * 1000:.0f} ms of {warm['wall_s']:.2f} s "
            f"(cold cache: {cold['manifest_s'] * 1000:.0f} ms)",
            f"{plain['wall_s']:.2f} s without the manifest",
            f"{pct:.2f} % of the run",
            f"≤ {TARGET_PCT:.0f} % cached",
            pct <= TARGET_PCT,
            {"plain": plain, "cold": cold, "warm": warm},
        )
    )
    cache_p = ctx.fresh_dir("manifest-cache-process")
    first = _process(ctx, root, years, cache_p)
    later = min(
        (_process(ctx, root, years, cache_p) for _ in range(ctx.reps)), key=lambda r: r["wall_s"]
    )
    pct_p = 100 * later["manifest_s"] / later["wall_s"]
    ctx.add(
        Row(
            "manifest",
            f"manifest: data manifest cost as a whole process (scripts/backtest.py), {what}",
            f"{later['manifest_s'] * 1000:.0f} ms of {later['wall_s']:.2f} s "
            f"(first run: {first['manifest_s'] * 1000:.0f} ms)",
            f"{later['wall_s'] - later['manifest_s']:.2f} s without it",
            f"{pct_p:.2f} % of the run",
            f"≤ {TARGET_PCT:.0f} % cached",
            pct_p <= TARGET_PCT,
            {"first": first, "later": later},
        )
    )

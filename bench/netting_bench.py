"""The NETTING benchmark of ``bench/run.py`` (:func:`bench_netting`): multi-symbol backtests on a
NETTING account (the default) against the same run on HEDGING, which NautilusTrader's portfolio
handles linearly and which gives the same fills and PnL for a long-only strategy.

For N symbols × the range (RTH 1-minute random walks, ``EMACrossLongOnly``, 10 shares, USD 100M so
that no run stops early): ``scripts/backtest.py`` as whole processes (cpu-s of the child, start-up
included) on NETTING and HEDGING, and in-process ``run_backtest`` on NETTING with ntrader's
kept snapshot counters, NETTING as Nautilus ships it (``counters_cache_in_kernel`` disabled; up to
``netting_plain_max`` symbols, it is quadratic) and HEDGING. Every variant must give the same
fills and PnL.
"""

from __future__ import annotations

import contextlib
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import REPO, Context, Row, progress
from ntrader.backtest import BacktestSpec, StrategySpec, VenueSpec, run_backtest

SYMBOLS = [f"S{i:02d}" for i in range(40)]
EMA = "nautilus_trader.examples.strategies.ema_cross_long_only"
PARAMS = {"trade_size": 10, "fast_ema_period": 10, "slow_ema_period": 20}
BALANCE = 100_000_000


def _catalog(ctx: Context, n: int) -> Path:
    from tests.backtest_fixtures import make_catalog

    first, last = ctx.sizes.netting_range
    root = ctx.work / "netting-catalog"
    have = {p.name.split(".")[0] for p in (root / "data" / "bar").glob("*")}
    for i, sym in enumerate(SYMBOLS[:n]):
        if sym not in have:
            make_catalog(root, sym, first, last, seed=i + 1, start_price=100.0 + i)
    return root


def _process(ctx: Context, root: Path, n: int, oms: str) -> tuple[float, dict[str, Any]]:
    """cpu-s of one ``scripts/backtest.py`` process and its summary's result."""
    import json

    runs = ctx.fresh_dir(f"netting-runs-{oms}")
    args = [
        sys.executable,
        "scripts/backtest.py",
        f"catalog.path={root}",
        "instruments.symbols=[" + ",".join(SYMBOLS[:n]) + "]",
        f"venue.oms_type={oms}",
        f"venue.starting_balance={BALANCE}",
        *(f"strategy.params.{k}={v}" for k, v in PARAMS.items()),
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "ibkr.auto_fetch=false",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(
        args, cwd=REPO, env={**ctx.env, "NTRADER_RUNS": str(runs)}, capture_output=True, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise RuntimeError(f"backtest {oms} x{n} failed ({p.returncode}): {p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    (summary,) = runs.glob("backtest/*/summary.json")
    return cpu, json.loads(summary.read_text())["result"]


def _inproc(root: Path, n: int, oms: str, fixes: bool) -> tuple[float, dict[str, Any]]:
    import ntrader.backtest.engine as engine_module

    strategy = StrategySpec(f"{EMA}:EMACrossLongOnly", f"{EMA}:EMACrossLongOnlyConfig", PARAMS)
    spec = BacktestSpec.of(
        SYMBOLS[:n], strategy, venue=VenueSpec(oms_type=oms, starting_balance=BALANCE)
    )
    real = engine_module.counters_cache_in_kernel
    if not fixes:
        engine_module.counters_cache_in_kernel = lambda enabled: contextlib.nullcontext()  # type: ignore[assignment]
    try:
        t0 = time.process_time()
        result = run_backtest(spec, root)
        return time.process_time() - t0, result.summary
    finally:
        engine_module.counters_cache_in_kernel = real


def bench_netting(ctx: Context) -> None:
    """NETTING vs HEDGING over 1..N symbols, whole processes and in-process."""
    first, last = ctx.sizes.netting_range
    span = f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
    per_symbol: dict[str, dict[int, float]] = {"process": {}, "inproc": {}}
    _inproc(_catalog(ctx, 1), 1, "HEDGING", fixes=True)  # warm-up: the first run imports more
    for n in ctx.sizes.netting_symbols:
        root = _catalog(ctx, n)
        progress(f"netting: {n} symbol(s) × {span}")
        t_net, r_net = _process(ctx, root, n, "NETTING")
        t_hedge, r_hedge = _process(ctx, root, n, "HEDGING")
        i_net, s_net = _inproc(root, n, "NETTING", fixes=True)
        i_hedge, s_hedge = _inproc(root, n, "HEDGING", fixes=True)
        same = {(r["fills"], round(r["pnl"], 6)) for r in (r_net, r_hedge, s_net, s_hedge)}
        plain = ""
        if n <= ctx.sizes.netting_plain_max:
            i_plain, s_plain = _inproc(root, n, "NETTING", fixes=False)
            same.add((s_plain["fills"], round(s_plain["pnl"], 6)))
            plain = (
                f"; NETTING as Nautilus ships it {i_plain:.1f} cpu-s ({i_plain / i_net:.1f}x ours)"
            )
        ctx.results.check(len(same) == 1, f"netting x{n}: NETTING and HEDGING fills/PnL equal")
        per_symbol["process"][n] = t_net / n
        per_symbol["inproc"][n] = i_net / n
        for kind, ours, ref in (("whole process", t_net, t_hedge), ("in-process", i_net, i_hedge)):
            ctx.add(
                Row(
                    "netting",
                    f"backtest {n} symbol(s) × {span}, NETTING ({kind}, cpu-s)",
                    f"{ours:.1f} cpu-s",
                    f"HEDGING {ref:.1f} cpu-s" + (plain if kind == "in-process" else ""),
                    f"{ours / ref:.2f}x HEDGING",
                    "≤ 1.3x HEDGING",
                    ours / ref <= 1.3,
                    data={"fills": r_net["fills"], "ours": ours, "hedging": ref},
                )
            )
    ns = sorted(per_symbol["process"])
    if len(ns) > 1:
        for kind in ("process", "inproc"):
            base, top = per_symbol[kind][ns[0]], per_symbol[kind][ns[-1]]
            ctx.add(
                Row(
                    "netting",
                    f"NETTING cost per symbol, {ns[0]} → {ns[-1]} symbols ({kind})",
                    f"{top:.1f} cpu-s/symbol at {ns[-1]}",
                    f"{base:.1f} cpu-s/symbol at {ns[0]}",
                    f"{top / base:.2f}x",
                    "≤ 1.3x (flat in symbols)",
                    top / base <= 1.3,
                )
            )

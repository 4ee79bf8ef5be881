"""The backtest benchmark of ``bench/run.py`` (:func:`bench_backtest`): the two backtest paths it
times side by side, the one-symbol catalog it shares with sweep and launchers, and the sweep
commands.

* :func:`ours` — the project's path end-to-end minus file reports (what ``scripts/backtest.py``
  does in-process): ``check_and_load`` -> ``build_engine`` -> ``run_engine`` -> ``analyse`` ->
  ``summarize``, with per-phase timings.
* :func:`bare` — NautilusTrader as its docs show it: ``ParquetDataCatalog.bars`` into a
  ``BacktestEngine`` with the example strategy, ``run_analysis`` on or off.

Both run ``EMACrossLongOnly`` (trade size 100, EMA 10/20, no historical-bar request) on a CASH,
NETTING, USD 100k account with Nautilus logging at ERROR and no commissions (``FeeSpec(0, 0, 0)``
on our side, no fee model on the bare side), so the engine does the same work.

The same year also as WHOLE processes (:func:`bench_backtest_processes`; interpreter, imports,
Hydra, run folder, reports — what a user waits for): ``scripts/backtest.py`` with its reports
(the default) and without (``reports.tearsheet=false reports.equity_png=false``), both with zero
fees, against ``python bench/ref_backtest_bare.py`` (``run_analysis=True``), alternating; wall and
cpu-s of each; ``summary.json``'s fills and cash balance must equal the bare script's, its PnL
(marked to market from the float equity curve) to the cent.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import Venue

from bench import gen
from bench.harness import PY, Context, Row, faster, progress, secs
from bench.import_bench import whole_process
from bench.ref_backtest_bare import FAST, SLOW, STARTING_USD, TRADE_SIZE, bare_engine
from bench.ref_backtest_bare import account_pnl as ref_account_pnl
from ntrader.backtest import (
    SHARPE,
    BacktestSpec,
    FeeSpec,
    StrategySpec,
    VenueSpec,
    analyse,
    build_engine,
    check_and_load,
    report_counts,
    run_engine,
    stats_equal,
    summarize,
)
from ntrader.catalog import Catalog

STRATEGY = "nautilus_trader.examples.strategies.ema_cross_long_only:EMACrossLongOnly"
PHASES = ("load/check", "build", "run", "analysis")


@dataclass
class Outcome:
    """One finished run: the engine (dispose it), its venue and what we compare."""

    engine: BacktestEngine
    venue: Venue
    phases: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] | None = None

    def dispose(self) -> None:
        self.engine.dispose()


def spec_for(bar_type: str, start: dt.date | None, end: dt.date | None) -> BacktestSpec:
    """What ``scripts/backtest.py::make_spec`` builds for this run (no run folder, no fees)."""
    return BacktestSpec(
        bar_types=[BarType.from_str(bar_type)],
        strategy=StrategySpec(
            STRATEGY,
            STRATEGY + "Config",
            {
                "trade_size": TRADE_SIZE,
                "fast_ema_period": FAST,
                "slow_ema_period": SLOW,
                "request_historical_bars": False,
            },
        ),
        venue=VenueSpec(
            account_type="CASH",
            oms_type="NETTING",
            base_currency="USD",
            starting_balance=float(STARTING_USD),
            fees=FeeSpec(0.0, 0.0, 0.0),
        ),
        start=start,
        end=end,
        log_level="ERROR",
        log_dir=None,
        fast_analysis=True,
    )


def ours(root: Path, spec: BacktestSpec) -> Outcome:
    """The project's path, timed per phase."""
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    data = check_and_load(Catalog(root), spec)
    t1 = time.perf_counter()
    engine, venues = build_engine(spec, data)
    t2 = time.perf_counter()
    run_engine(engine, data)  # the bars stream from files ``data`` pins: close it after
    t3 = time.perf_counter()
    venue = venues[0]
    analyse(engine, venue, fast=True, only_venue=True)
    summary = summarize(engine, venue)
    t4 = time.perf_counter()
    data.close()
    t.update(zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True))
    return Outcome(engine, venue, t, summary)


def bare(root: Path, bar_type: str, *, run_analysis: bool) -> Outcome:
    """NautilusTrader's own path (:func:`bench.ref_backtest_bare.bare_engine`)."""
    return Outcome(*bare_engine(root, bar_type, run_analysis=run_analysis))


def stat(stats: dict[str, Any], name: str) -> float | None:
    """A stat as ``summarize`` reports it: a float, None when missing or non-finite."""
    value = stats.get(name)
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        return None
    return float(value)


def analyzer_stats(engine: BacktestEngine) -> dict[str, Any]:
    """The analyzer's three stats dicts as the engine left them (no recomputation)."""
    a = engine.portfolio.analyzer
    return {
        "pnls": {c.code: a.get_performance_stats_pnls(c) for c in a.currencies},
        "returns": a.get_performance_stats_returns(),
        "general": a.get_performance_stats_general(),
    }


def account_pnl(o: Outcome) -> float:
    return ref_account_pnl(o.engine, o.venue)


def fills(o: Outcome) -> int:
    return report_counts(o.engine)["fills"]


def compare(ours_run: Outcome, reference: Outcome) -> tuple[bool, str]:
    """Our summary's Sharpe / PnL / win rate and the analyzer's stats dicts vs the reference
    engine's (``run_analysis=True``), and the fill counts."""
    s = ours_run.summary or {}
    ref = analyzer_stats(reference.engine)
    ref_pnls = ref["pnls"].get("USD", {})
    headline = {
        "sharpe": (s.get("sharpe"), stat(ref["returns"], SHARPE)),
        "pnl": (s.get("pnl"), account_pnl(reference)),
        "win_rate": (s.get("win_rate"), stat(ref_pnls, "Win Rate")),
    }
    same_headline = all(stats_equal(a, b) for a, b in headline.values())
    same_pnl_total = stats_equal(s.get("pnl"), stat(ref_pnls, "PnL (total)"))
    same_stats = stats_equal(analyzer_stats(ours_run.engine), ref)
    fills_ours, fills_ref = s.get("fills"), fills(reference)
    ok = same_headline and same_pnl_total and same_stats and fills_ours == fills_ref
    shown = ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in headline.items())
    text = (
        f"{shown}; PnL (total) stat equal: {same_pnl_total}; analyzer pnls/returns/general "
        f"dicts equal (stats_equal): {same_stats}; fills {fills_ours:,} vs {fills_ref:,}"
    )
    return ok, text


# ------------------------------------------------------------------------------------ sweep

SWEEP_AXES = ("strategy.params.fast_ema_period", "strategy.params.slow_ema_period", "dates.end")


def sweep_cmd(
    py: str, root: Path, symbol: str, fast: str, slow: str, ends: str, *, jobs: int
) -> list[str]:
    cmd = [
        py,
        "scripts/backtest.py",
        "-m",
        f"catalog.path={root}",
        f"symbol={symbol}",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "log_level=WARNING",
        f"{SWEEP_AXES[0]}={fast}",
        f"{SWEEP_AXES[1]}={slow}",
        f"{SWEEP_AXES[2]}={ends}",
    ]
    if jobs > 1:
        cmd += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    return cmd


def sweep_rows(runs_root: Path) -> list[dict[str, str]]:
    """The rows of the one ``sweep_summary.csv`` under ``runs_root``."""
    found = sorted(runs_root.glob("backtest/multirun/*/sweep_summary.csv"))
    if len(found) != 1:
        raise RuntimeError(f"expected one sweep_summary.csv under {runs_root}, found {found}")
    with open(found[0], newline="") as fh:
        return list(csv.DictReader(fh))


def pnl_by_overrides(rows: list[dict[str, str]]) -> dict[frozenset[str], str]:
    return {frozenset(r["overrides"].split()): r["pnl"] for r in rows}


# ------------------------------------------------------------------------------------ benchmark


def backtest_catalog(ctx: Context) -> tuple[Path, str, int]:
    """One symbol's RTH 1-minute bars over ``sizes.backtest_range`` (shared with sweep and
    launchers, kept on ``ctx.bt``): root, bar type and bar count."""
    if ctx.bt is None:
        first, last = ctx.sizes.backtest_range
        progress(f"backtest: writing {first} .. {last} RTH 1-min bars of one symbol (XNYS)")
        root = ctx.fresh_dir("backtest")
        _, bar_type, n = gen.backtest_catalog(root, start=first, end=last)
        ctx.bt = (root, bar_type, n)
    return ctx.bt


def bench_backtest(ctx: Context) -> None:
    first, last = ctx.sizes.backtest_range
    root, bar_type, n = backtest_catalog(ctx)
    spec = spec_for(bar_type, first, last)
    names = ("ours", "bare", "bare+analysis")

    def run_side(name: str, r: Path, sp: Any) -> Outcome:
        if name == "ours":
            return ours(r, sp)
        return bare(r, bar_type, run_analysis=name == "bare+analysis")

    progress("backtest: warming up the three sides on one week")
    warm_first, warm_last = dt.date(2024, 1, 2), dt.date(2024, 1, 8)
    warm = ctx.fresh_dir("backtest-warm")
    gen.backtest_catalog(warm, start=warm_first, end=warm_last)
    for name in names:
        run_side(name, warm, spec_for(bar_type, warm_first, warm_last)).dispose()

    # Interleaved (ours, bare, bare+analysis per repetition): a shared machine's load
    # changes hit the three sides alike.
    runs: dict[str, list[float]] = {k: [] for k in names}
    phases: dict[str, dict[str, float]] = {}  # of each side's best run
    last_run: dict[str, Outcome] = {}
    for i in range(ctx.reps):
        for name in names:
            if name in last_run:
                last_run.pop(name).dispose()
            gc.collect()
            t0 = time.perf_counter()
            out = run_side(name, root, spec)
            runs[name].append(time.perf_counter() - t0)
            last_run[name] = out
            if runs[name][-1] == min(runs[name]):
                phases[name] = dict(out.phases)
        progress(
            f"backtest: repetition {i + 1}/{ctx.reps}: "
            + ", ".join(f"{k} {secs(v[-1])}" for k, v in runs.items())
        )
    best = {k: min(v) for k, v in runs.items()}
    o, b, ba = best["ours"], best["bare"], best["bare+analysis"]
    label = f"{n:,} RTH 1-min bars ({first.year}, 1 symbol), EMACrossLongOnly"
    ctx.add(
        Row(
            "backtest",
            f"backtest: ours end-to-end vs bare engine without analysis, {label} (in-process)",
            secs(o),
            f"{secs(b)} (run_analysis=False)",
            f"{o / b:.2f}x bare",
            "≤ 1.05x",
            o / b <= 1.05,
            {"ours_s": runs["ours"], "bare_s": runs["bare"], "ratio": o / b},
            probe=lambda: ours(root, spec),
        )
    )
    ctx.add(
        Row(
            "backtest",
            "backtest: ours vs bare engine with run_analysis=True (Nautilus default) (in-process)",
            secs(o),
            f"{secs(ba)} (run_analysis=True)",
            f"{faster(o, ba)} ({o / ba:.2f}x)",
            "≥ 1.5x faster (stretch)",
            ba / o >= 1.5,
            {"ours_s": runs["ours"], "bare_analysis_s": runs["bare+analysis"], "ratio": o / ba},
            probe=lambda: ours(root, spec),
        )
    )
    ref_phases = phases["bare+analysis"]
    ctx.add(
        Row(
            "backtest",
            "backtest: where the time goes (best runs) (in-process)",
            " · ".join(f"{k} {secs(v)}" for k, v in phases["ours"].items()),
            "bare+analysis: " + " · ".join(f"{k} {secs(v)}" for k, v in ref_phases.items()),
            "",
            "—",
            None,
            {"ours": phases["ours"], "bare": phases["bare"], "bare+analysis": ref_phases},
        )
    )

    mine, ref, plain = last_run["ours"], last_run["bare+analysis"], last_run["bare"]
    ok, text = compare(mine, ref)
    ctx.results.check(ok, f"backtest: ours vs bare+analysis: {text}")
    iters = {k: int(v.engine.iteration) for k, v in last_run.items()}
    same_plain = fills(plain) == (mine.summary or {}).get("fills") and account_pnl(plain) == (
        mine.summary or {}
    ).get("pnl")
    ctx.results.check(
        same_plain and set(iters.values()) == {n},
        f"backtest: bare (no analysis) has the same fills and account PnL as ours: "
        f"{same_plain}; bars processed {iters} of {n:,} written",
    )
    for out in last_run.values():
        out.dispose()
    bench_backtest_processes(ctx, label, warm)


NO_REPORTS = ("reports.tearsheet=false", "reports.equity_png=false")
PROC_SIDES = {
    "reports": "scripts/backtest.py, reports on (the default)",
    "no-reports": "scripts/backtest.py " + " ".join(NO_REPORTS),
    "bare": "bench/ref_backtest_bare.py (run_analysis=True)",
}


def process_result(
    ctx: Context, side: str, root: Path, bar_type: str, dates: tuple[dt.date, dt.date] | None
) -> tuple[float, float, Any]:
    """Wall s, cpu-s and result (``summary.json``'s, or the bare script's JSON) of one run."""
    cmd = [PY, "bench/ref_backtest_bare.py", str(root), bar_type]
    if side != "bare":
        cmd = [
            PY,
            "scripts/backtest.py",
            f"catalog.path={root}",
            f"symbol={bar_type.split('-', 1)[0]}",
            *([f"dates.start={dates[0]}", f"dates.end={dates[1]}"] if dates else []),
            *(f"venue.fees.{k}=0" for k in ("per_share", "minimum", "max_pct")),
            "ibkr.auto_fetch=false",
            *(NO_REPORTS if side == "no-reports" else ()),
        ]
    runs = ctx.fresh_dir("backtest-proc-runs")
    proc = whole_process(cmd, {**ctx.env, "NTRADER_RUNS": str(runs)})
    if side == "bare":
        return proc.wall, proc.cpu, json.loads(proc.stdout.strip().splitlines()[-1])
    (summary,) = runs.glob("backtest/*/summary.json")
    return proc.wall, proc.cpu, json.loads(summary.read_text())["result"]


def bench_backtest_processes(ctx: Context, label: str, warm: Path) -> None:
    """Ours with and without reports vs the bare-engine script, whole processes, alternating."""
    root, bar_type, n = backtest_catalog(ctx)
    progress("backtest: whole processes, warming up on one week")
    for side in PROC_SIDES:
        process_result(ctx, side, warm, bar_type, None)
    wall: dict[str, list[float]] = {k: [] for k in PROC_SIDES}
    cpu: dict[str, list[float]] = {k: [] for k in PROC_SIDES}
    result: dict[str, Any] = {}
    for i in range(ctx.reps):
        for side in PROC_SIDES:
            w, c, result[side] = process_result(ctx, side, root, bar_type, ctx.sizes.backtest_range)
            wall[side].append(w)
            cpu[side].append(c)
        progress(
            f"backtest: whole processes {i + 1}/{ctx.reps}: "
            + ", ".join(f"{k} {secs(v[-1])} ({cpu[k][-1]:.1f} cpu-s)" for k, v in wall.items())
        )
    bw, bc = min(wall["bare"]), min(cpu["bare"])
    for side in ("reports", "no-reports"):
        w, c = min(wall[side]), min(cpu[side])
        ctx.add(
            Row(
                "backtest",
                f"backtest: {PROC_SIDES[side]} vs bare-engine script with run_analysis=True, "
                f"{label} (whole process)",
                f"{secs(w)} ({c:.1f} cpu-s)",
                f"{secs(bw)} ({bc:.1f} cpu-s)",
                f"{w / bw:.2f}x bare wall, {c / bc:.2f}x cpu",
                "—",
                None,
                {"wall_s": {k: wall[k] for k in (side, "bare")}, "ratio_wall": w / bw}
                | {"cpu_s": {k: cpu[k] for k in (side, "bare")}, "ratio_cpu": c / bc}
                | {"median_wall_s": {k: statistics.median(wall[k]) for k in (side, "bare")}},
            )
        )
    ref = result["bare"]
    for side in ("reports", "no-reports"):
        got = result[side]
        # summary.json's pnl is marked to market (final equity of the float equity curve minus
        # the start): equal to the account's to the cent; fills and cash balance exactly.
        same = all(got.get(k) == ref[k] for k in ("fills", "ending_balance"))
        cent = round(got.get("pnl") or 0.0, 2) == round(ref["pnl"], 2)
        ctx.results.check(
            same and cent and ref["bars"] == n,
            f"backtest (whole process): {PROC_SIDES[side]}: fills {got.get('fills')!r} vs "
            f"{ref['fills']!r} (bare script), ending balance {got.get('ending_balance')!r} vs "
            f"{ref['ending_balance']!r}, PnL {got.get('pnl')!r} vs {ref['pnl']!r} (equal to "
            f"the cent: {cent}); bare processed {ref['bars']:,} of {n:,} bars",
        )

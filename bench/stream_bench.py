"""The stream benchmark of ``bench/run.py`` (:func:`bench_stream`): peak memory of backtests as
whole processes, streamed (the default ``data.stream_chunk``) against the one-shot load
(``data.stream_chunk=0``, every bar in memory up front, as before streaming).

``scripts/backtest.py`` over 1 symbol × N years and M symbols × 1 year of RTH 1-minute random
walks (``EMACrossLongOnly`` with slow EMAs, 300/1200, so that the fills the engine keeps stay few
and the memory measured is the bars'), peak RSS of the child (its ``VmHWM``), reported as MiB per
million bars above the base: the same symbols over their first month (a catalog holding only that
month). Both variants must give the same fills and PnL. The 100 symbols × 5 years the issue asks
to fit in 24 GB is projected from the measurements (base, the per-symbol part of the base, the
largest case's MiB per million bars × 49M bars), not run (it would take ~1.5 hours here).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import REPO, Context, Row, progress

PARAMS = {"trade_size": 10, "fast_ema_period": 300, "slow_ema_period": 1200}
TARGET_MIB_PER_M = 150.0
BIG_BARS = 100 * 5 * 252 * 390  # 100 symbols x 5 years RTH: 49.1M bars
MACHINE_GIB = 24


def _catalog(ctx: Context, name: str, symbols: int, first: dt.date, last: dt.date) -> Path:
    from tests.backtest_fixtures import make_catalog

    root = ctx.work / name
    if not root.exists():
        for i in range(symbols):
            make_catalog(root, f"M{i:02d}", first, last, seed=i + 1, start_price=100.0 + i)
    return root


class _PeakRss:
    """The child's own peak RSS: ``VmHWM`` of ``/proc/<pid>/status``, polled every 20 ms once
    the child runs the script. ``wait4``'s ``ru_maxrss`` is no use here: a child spawned by vfork
    runs on the parent's memory until its exec, and Linux keeps that high-water mark — a child of
    a 14 GiB benchmark process "peaks" at 14 GiB."""

    def __init__(self, pid: int) -> None:
        self.pid, self.kib, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        proc = Path(f"/proc/{self.pid}")
        while not self._done.is_set():
            try:
                if b"scripts/backtest.py" in (proc / "cmdline").read_bytes():  # after its exec
                    for line in (proc / "status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.kib = max(self.kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            self._done.wait(0.02)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.kib / 1024


def _process(
    ctx: Context, root: Path, symbols: int, first: dt.date, last: dt.date, chunk: int | None
) -> dict[str, Any]:
    """One ``scripts/backtest.py``: peak RSS (MiB), cpu-s, wall s and its summary's result."""
    runs = ctx.fresh_dir("stream-runs")
    args = [
        sys.executable,
        "scripts/backtest.py",
        f"catalog.path={root}",
        "instruments.symbols=[" + ",".join(f"M{i:02d}" for i in range(symbols)) + "]",
        f"dates.start={first}",
        f"dates.end={last}",
        "venue.starting_balance=100000000",
        *(f"strategy.params.{k}={v}" for k, v in PARAMS.items()),
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "ibkr.auto_fetch=false",
        *([] if chunk is None else [f"data.stream_chunk={chunk}"]),
    ]
    t0 = time.perf_counter()
    p = subprocess.Popen(
        args,
        cwd=REPO,
        env={**ctx.env, "NTRADER_RUNS": str(runs)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = _PeakRss(p.pid)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    peak.stop()
    err = p.stderr.read() if p.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f"backtest x{symbols} {first}..{last} failed ({code}): {err[-2000:]}")
    (summary,) = runs.glob("backtest/*/summary.json")
    return {
        "rss_mib": peak.mib,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "result": json.loads(summary.read_text())["result"],
    }


def _month_later(first: dt.date) -> dt.date:
    return first + dt.timedelta(days=30)


def bench_stream(ctx: Context) -> None:
    """Per case: peak RSS above the same symbols over their first month (the base: interpreter,
    engine, instruments, strategies, first fills), per million bars more — streamed and one-shot."""
    years, symbols = ctx.sizes.stream_years, ctx.sizes.stream_symbols
    last_day = dt.date(2024, 12, 31)
    one = _catalog(ctx, "stream-one", 1, dt.date(2024 - max(years) + 1, 1, 1), last_day)
    many = _catalog(ctx, "stream-many", symbols, dt.date(2024, 1, 1), last_day)
    cases = [(one, 1, dt.date(2024 - y + 1, 1, 1), f"1 symbol × {y} year(s)") for y in years]
    cases.append((many, symbols, dt.date(2024, 1, 1), f"{symbols} symbols × 1 year"))
    bases: dict[int, float] = {}
    largest: tuple[int, float] = (0, 0.0)  # (bars, MiB per million bars) of the largest case
    for root, n, first, label in cases:
        progress(f"stream: {label}, streamed and loaded up front (and their first month)")
        # the base runs on a catalog of the first month alone: on the full catalog a month's
        # check would still read whole files' timestamps (a year or ten per file)
        small = _catalog(ctx, f"stream-base-{n}-{first}", n, first, _month_later(first))
        spans = (("base", small, _month_later(first)), ("full", root, last_day))
        runs = {
            (kind, span): _process(ctx, where, n, first, end, chunk)
            for kind, chunk in (("streamed", None), ("loaded", 0))
            for span, where, end in spans
        }
        s_res, l_res = runs["streamed", "full"]["result"], runs["loaded", "full"]["result"]
        same = all(s_res.get(k) == l_res.get(k) for k in ("bars", "fills", "pnl", "orders"))
        ctx.results.check(
            same,
            f"stream {label}: streamed and one-shot runs give the same bars, orders, fills, PnL "
            f"({s_res.get('fills')} fills, PnL {s_res.get('pnl')})",
        )

        def per_million(kind: str, runs: dict[Any, Any] = runs) -> tuple[float, float, float]:
            full, base = runs[kind, "full"], runs[kind, "base"]
            more = int(full["result"]["bars"]) - int(base["result"]["bars"])
            return (
                (full["rss_mib"] - base["rss_mib"]) / more * 1e6,
                full["rss_mib"],
                base["rss_mib"],
            )

        per_m, peak, base = per_million("streamed")
        ref_per_m, ref_peak, _ = per_million("loaded")
        bases[n] = base
        bars = int(s_res["bars"])
        largest = max(largest, (bars, per_m))
        cpu, ref_cpu = runs["streamed", "full"]["cpu_s"], runs["loaded", "full"]["cpu_s"]
        ctx.add(
            Row(
                "stream",
                f"backtest {label} ({bars / 1e6:.2f}M bars, {s_res.get('fills')} fills): peak RSS "
                "of the process, per million bars above its first month",
                f"{per_m:.0f} MiB/M bars ({peak:.0f} MiB peak, base {base:.0f}; {cpu:.1f} cpu-s)",
                f"one-shot load {ref_per_m:.0f} MiB/M bars ({ref_peak:.0f} MiB; "
                f"{ref_cpu:.1f} cpu-s)",
                (f"{ref_per_m / per_m:.1f}x less memory per bar" if per_m > 0 else "flat")
                + f", {cpu / ref_cpu:.2f}x the cpu",
                f"≤ {TARGET_MIB_PER_M:.0f} MiB per million bars",
                per_m <= TARGET_MIB_PER_M,
                {"runs": {f"{k}/{s}": v for (k, s), v in runs.items()}, "bars": bars},
            )
        )
    per_symbol = (bases[symbols] - bases[1]) / max(1, symbols - 1)  # instrument, strategy, stream
    slope = largest[1]
    projected = (bases[1] + 99 * per_symbol + slope * BIG_BARS / 1e6) / 1024
    ctx.add(
        Row(
            "stream",
            f"projection: 100 symbols × 5 years RTH ({BIG_BARS / 1e6:.1f}M bars), streamed",
            f"≈ {projected:.1f} GiB peak (not run: base {bases[1]:.0f} MiB + 99 × {per_symbol:.1f}"
            f" MiB per symbol + {slope:.0f} MiB/M bars)",
            f"this machine: {MACHINE_GIB} GiB",
            f"{projected / MACHINE_GIB:.0%} of it",
            f"fits in {MACHINE_GIB} GiB",
            projected < MACHINE_GIB,
        )
    )

"""The catalog report benchmark of ``bench/run.py`` (:func:`bench_report`, issue 17): does
``make report`` stay usable at 500 instruments × 5 years?

N instruments of daily bars over Y years (one session in a hundred dropped, so there are cells to
colour), one file per instrument. Measured side by side: the report in process
(``ntrader.quality.catalog_report``) and ``make report`` as a whole process (``scripts/scan.py
report=true``, start-up included), both with the data-health findings on (the default), against
``make scan FORMAT=json`` of the same catalog (what a user reads instead); the page's size and how
long headless chromium takes to load and draw it
(``--screenshot``, start-up included; skipped where ``/usr/bin/chromium`` is missing). Daily bars
give the same cells as 1-minute bars (the cells are months at this width); what 1-minute bars add
is the ``ts_event`` reads, which ``make check``'s area measures.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import Context, Row, progress, run_cmd, secs, timed
from ntrader.catalog import Catalog
from ntrader.catalog.barframe import random_walk_frame
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.quality import HealthOptions, catalog_report
from ntrader.sessions import sessions_between

DAY_NS = 86_400_000_000_000
CHROMIUM = "/usr/bin/chromium"
PAGE_MB_TARGET, RENDER_S_TARGET = 10.0, 10.0


def _catalog(ctx: Context, instruments: int, years: int) -> tuple[Path, int]:
    root = ctx.fresh_dir("report")
    catalog = Catalog(root)
    sessions = sessions_between("XNYS", dt.date(2024 - years + 1, 1, 1), dt.date(2024, 12, 31))
    closes = sessions.midnight_ns + DAY_NS  # a daily bar closes at the next local midnight
    rng = np.random.default_rng(17)
    bars = 0
    for i in range(instruments):
        iid = resolve_instrument_id(f"D{i:03d}")
        keep = np.flatnonzero(rng.random(closes.size) >= 0.01)
        frame = random_walk_frame(closes[keep], seed=i + 1)
        catalog.write_bars(bar_type_for(iid, "1-DAY-LAST"), frame, instrument=make_equity(iid, 2))
        bars += keep.size
    return root, bars


def _render_s(page: Path) -> float | None:
    if not Path(CHROMIUM).exists():
        return None
    with tempfile.TemporaryDirectory(prefix="ntrader-bench-chromium-") as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp}/profile",
                "--window-size=1400,4000",
                f"--screenshot={tmp}/shot.png",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=300,
            check=True,
        )
        return time.perf_counter() - t0


def bench_report(ctx: Context) -> None:
    instruments, years = ctx.sizes.report
    progress(f"report: {instruments} instruments x {years} years of daily bars")
    root, bars = _catalog(ctx, instruments, years)
    out = ctx.fresh_dir("report-out")
    health = HealthOptions()  # on, as make report runs it by default
    t_in, written = timed(lambda: catalog_report(Catalog(root), out, health=health), ctx.reps)
    page_mb = written.counts["page_bytes"] / 1e6
    env = ctx.env
    script = [sys.executable, "scripts/scan.py", f"catalog.path={root}"]
    t_proc, _ = timed(lambda: run_cmd([*script, "report=true"], env), ctx.reps)
    t_scan, _ = timed(lambda: run_cmd([*script, "format=json"], env), ctx.reps)
    render = _render_s(written.html)
    ctx.results.check(
        written.counts["missing"] > 0 and written.counts["bar_types"] == instruments,
        f"report: {written.counts['bar_types']} rows, {written.counts['missing']} missing "
        f"session(s) shown of {bars:,} bars",
    )
    met = page_mb <= PAGE_MB_TARGET and (render is None or render <= RENDER_S_TARGET)
    shown = "not measured (no chromium)" if render is None else secs(render)
    ctx.add(
        Row(
            "report",
            f"report: make report of {instruments} instruments × {years} years of daily bars "
            f"(one cell per {written.unit}, health findings on), whole process; page size; "
            "chromium load + draw",
            f"{secs(t_proc.best)} (in process {secs(t_in.best)}); page {page_mb:.1f} MB; "
            f"render {shown}",
            f"make scan FORMAT=json {secs(t_scan.best)}",
            f"{t_proc.best / t_scan.best:.1f}x",
            f"page ≤ {PAGE_MB_TARGET:g} MB, render ≤ {RENDER_S_TARGET:g} s",
            met,
            {
                "instruments": instruments,
                "years": years,
                "bars": bars,
                "in_process_s": t_in.best,
                "process_s": t_proc.best,
                "scan_s": t_scan.best,
                "page_bytes": written.counts["page_bytes"],
                "render_s": render,
                "cell": written.unit,
            },
        )
    )
    shutil.rmtree(out, ignore_errors=True)

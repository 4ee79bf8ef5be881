"""The README's pictures of the two pages, made by the commands the README shows (``make
screenshots``): never drawn by hand, so they cannot drift from what the code writes.

1. A catalog of six instruments × one quarter of 1-minute bars, written through the library with
   the kinds of trouble a real catalog has: sessions never fetched, a session with bars missing, a
   late listing, bars with high < low, a run of zero-volume bars, a price spike.
   ``scripts/scan.py report=true`` (what ``make report`` runs) writes the catalog report;
   headless chromium takes its picture (``docs/images/catalog_report.png``), with the first
   finding's cell outlined (``#finding-0``).
2. A sweep of the EMA cross over fast × slow periods on that catalog (``scripts/backtest.py -m``,
   what ``make sweep`` runs); chromium takes the picture of its ``sweep.html``
   (``docs/images/sweep.png``).

Run from the repository: ``make screenshots`` (about a minute; needs ``/usr/bin/chromium``);
``--out DIR`` writes them elsewhere (the test does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"
MINUTE = 60_000_000_000
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META")
PICTURES = ("catalog_report.png", "sweep.png")  # what the README embeds, from docs/images/


def write_catalog(root: Path) -> None:
    from ntrader.catalog import Catalog
    from ntrader.catalog.barframe import random_walk_frame
    from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
    from ntrader.sessions import bar_grid, expand_grid, sessions_between

    catalog = Catalog(root)
    sessions = sessions_between("XNYS", dt.date(2024, 4, 1), dt.date(2024, 6, 28))
    first, counts = bar_grid(sessions, MINUTE, "regular")
    ts = expand_grid(first, counts, MINUTE)
    day = np.repeat(np.arange(len(counts)), counts)  # each bar's session index
    for n, sym in enumerate(SYMBOLS):
        f = random_walk_frame(ts, seed=n + 1, start_price=100.0 + 40 * n)
        keep = np.ones(len(f), dtype=bool)
        if sym == "MSFT":
            keep &= ~np.isin(day, [20, 21, 22])  # three sessions never fetched
        if sym == "NVDA":
            keep &= ~((day == 35) & (np.arange(len(f)) % 390 > 200))  # half a session missing
            at = int(np.flatnonzero(day == 50)[100])
            f.high[at : at + 3] = f.low[at : at + 3] - 0.25  # high < low
        if sym == "META":
            keep &= day >= 15  # listed (stored) from the 16th session on
        if sym == "AMZN":
            f.volume[np.flatnonzero(day == 44)[30:80]] = 0  # 50 zero-volume bars
        if sym == "GOOGL":
            at = int(np.flatnonzero(day == 28)[200])
            f.close[at] = round(f.close[at] * 1.25, 2)
            f.high[at] = max(f.high[at], f.close[at])
            f.open[at + 1] = f.close[at - 1]
            f.high[at + 1] = max(f.high[at + 1], f.open[at + 1])
            f.low[at + 1] = min(f.low[at + 1], f.open[at + 1])
        iid = resolve_instrument_id(sym)
        catalog.write_bars(
            bar_type_for(iid, "1-MINUTE-LAST"),
            f.take(np.flatnonzero(keep)),
            instrument=make_equity(iid, 2),
        )


def script(args: list[str], runs: Path) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**os.environ, "NTRADER_RUNS": str(runs)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p


def shoot(page: Path, png: Path, tmp: Path, size: str, fragment: str = "") -> None:
    profile = tmp / f"chromium-{png.stem}"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            "--virtual-time-budget=8000",
            f"--screenshot={png}",
            page.as_uri() + fragment,
        ],
        capture_output=True,
        timeout=300,
        check=True,
    )
    shutil.rmtree(profile, ignore_errors=True)
    print(f"wrote {png}")


def main(out: Path = OUT) -> int:
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ntrader-screenshots-") as tmp_dir:
        tmp = Path(tmp_dir)
        root, runs = tmp / "catalog", tmp / "runs"
        write_catalog(root)
        script(["scripts/scan.py", "report=true", f"catalog.path={root}"], runs)
        (summary,) = runs.glob("scan/*/summary.json")
        page = Path(json.loads(summary.read_text())["report"]["html"])
        shoot(page, out / PICTURES[0], tmp, "1200,1250", "#finding-0")
        sweep_args = [
            "scripts/backtest.py",
            "-m",
            f"catalog.path={root}",
            "symbol=AAPL",
            "strategy.params.fast_ema_period=5,10,20",
            "strategy.params.slow_ema_period=30,60",
            "reports.tearsheet=false",
            "reports.equity_png=false",
        ]
        script(sweep_args, runs)
        (sweep,) = (runs / "backtest" / "multirun").glob("*/sweep.html")
        shoot(sweep, out / PICTURES[1], tmp, "1200,780")
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Regenerate the README's page pictures.")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    raise SystemExit(main(parser.parse_args().out.resolve()))

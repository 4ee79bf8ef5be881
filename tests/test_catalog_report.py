"""``make report`` (issue 17, first part): the catalog's coverage as a self-contained HTML page and
a PNG in the run folder, rendered in headless chromium: the page is drawn, its numbers are
``make scan FORMAT=json``'s, and a missing session and a session IB had no data for are in their
right cells — weekends never cells at all."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest

from ntrader.ibkr.sim import Faults, run_simulator
from ntrader.quality.coverage import COMPLETE, MISSING, NODATA, OUTSIDE, PARTIAL, build, period_code

from .browser import chromium
from .conftest import REPO, run_make

GAP, NO_DATA = dt.date(2024, 5, 9), dt.date(2024, 5, 15)
SESSIONS = [
    "2024-05-06", "2024-05-07", "2024-05-08", "2024-05-09", "2024-05-10",
    "2024-05-13", "2024-05-14", "2024-05-15", "2024-05-16", "2024-05-17",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory) -> Path:
    """AAPL and MSFT fetched from the simulator over two weeks; AAPL lacks 2024-05-09 (never
    fetched), IB has no data for 2024-05-15."""
    root = tmp_path_factory.mktemp("report") / "catalog"
    runs = root.parent / "runs"
    with run_simulator(Faults(no_data_sessions=[NO_DATA])) as sim:
        for sym, a, b in [
            ("AAPL", "2024-05-06", "2024-05-08"),
            ("AAPL", "2024-05-10", "2024-05-17"),
            ("MSFT", "2024-05-06", "2024-05-17"),
        ]:
            p = subprocess.run(
                [
                    sys.executable,
                    "scripts/fetch.py",
                    f"symbols=[{sym}]",
                    f"dates.start={a}",
                    f"dates.end={b}",
                    f"catalog.path={root}",
                ],
                cwd=REPO,
                env={**os.environ, "IBKR_PORT": str(sim.port), "NTRADER_RUNS": str(runs)},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert p.returncode == 0, p.stderr[-2000:]
    return root


class Cells(HTMLParser):
    """``data-key`` cells of the bar-type rows and the totals, and each heatmap's rendering."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.totals: dict[str, str] = {}
        self.rendered: list[dict[str, Any]] = []
        self.heatmap_layers = 0
        self._row: str | None = None
        self._key: str | None = None
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
        if tag == "tr" and "data-bar-type" in a:
            self._row = a["data-bar-type"]
            self.rows[self._row] = {}
        if tag == "td" and "data-key" in a:
            self._key = a["data-key"]
        if "data-rendered" in a:
            self.rendered.append(json.loads(a["data-rendered"]))
        if "heatmaplayer" in (a.get("class") or ""):
            self.heatmap_layers += 1

    def handle_data(self, data: str) -> None:
        if self._key is None:
            return
        if self._table == "totals":
            self.totals[self._key] = data
        elif self._row is not None:
            self.rows[self._row][self._key] = data
        self._key = None


@pytest.fixture(scope="module")
def report(catalog_dir) -> dict[str, Any]:
    runs = catalog_dir.parent / "runs"
    p = run_make("report", f"CATALOG={catalog_dir}", runs=runs)
    assert p.returncode == 0, p.stderr[-3000:]
    summaries = sorted((runs / "scan").glob("*/summary.json"))
    summary = json.loads(summaries[-1].read_text())
    page = Path(summary["report"]["html"])
    assert page.parent == Path(summary["run_dir"]) and page.name in p.stdout
    scan = run_make("scan", f"CATALOG={catalog_dir}", "FORMAT=json", runs=runs)
    assert scan.returncode == 0, scan.stderr
    with tempfile.TemporaryDirectory(prefix="ntrader-chromium-") as tmp:
        shot = Path(tmp) / "shot.png"
        chromium(page, Path(tmp) / "p1", f"--screenshot={shot}")
        pixels = (np.asarray(mpimg.imread(shot))[..., :3] * 255).round().astype(int)
        dom = chromium(page, Path(tmp) / "p2", "--dump-dom")
    cells = Cells()
    cells.feed(dom)
    return {"summary": summary, "scan": json.loads(scan.stdout), "cells": cells, "px": pixels,
            "page": page}  # fmt: skip


def test_the_page_shows_make_scans_numbers(report):
    cells, scan = report["cells"], report["scan"]
    assert sorted(cells.rows) == sorted(r["bar_type"] for r in scan)
    for r in scan:
        shown = cells.rows[r["bar_type"]]
        for key in ("first", "last"):
            assert shown[key] == r[key]
        for key in ("rows", "files", "bytes"):
            assert shown[key] == f"{r[key]:,}"
    assert cells.totals["rows"] == f"{sum(r['rows'] for r in scan):,}"
    assert cells.totals["bar types"] == str(len(scan))
    assert cells.rows["AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"]["missing"] == "1"
    assert cells.rows["MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL"]["no data at IB"] == "1"


def test_the_heatmap_is_drawn_with_each_session_in_its_cell(report):
    cells = report["cells"]
    assert cells.heatmap_layers >= 1  # plotly drew it (no network: plotly is inlined)
    (fig,) = cells.rendered
    assert fig["x"] == SESSIONS  # sessions only: 2024-05-11/12 (a weekend) are no columns
    assert fig["y"] == ["AAPL.NASDAQ", "MSFT.NASDAQ"]
    aapl, msft = fig["z"]
    assert aapl[SESSIONS.index(str(GAP))] == MISSING
    assert aapl[SESSIONS.index(str(NO_DATA))] == NODATA == msft[SESSIONS.index(str(NO_DATA))]
    assert [c for c in aapl if c != COMPLETE] == [MISSING, NODATA]
    assert [c for c in msft if c != COMPLETE] == [NODATA]
    # the red of "missing" is on the screen, and the page is not blank
    red = np.all(np.abs(report["px"] - [0xD6, 0x27, 0x28]) <= 3, axis=-1)
    assert red.sum() > 200
    assert (report["px"] < 128).any(axis=-1).sum() > 1000  # text and cells, not a white page


def test_the_run_folder_has_the_png_and_the_summary_counts(report):
    s = report["summary"]
    assert s["status"] == "ok"
    assert (s["report"]["complete"], s["report"]["missing"], s["report"]["nodata"]) == (17, 1, 2)
    png = Path(s["report"]["png"])
    image = mpimg.imread(png)
    assert image.shape[0] > 100 and image.shape[1] > 500
    page = report["page"].read_text()
    assert "<script src" not in page and "<link " not in page  # opens without a network
    assert "Plotly.newPlot" in page and len(page) > 3_000_000  # plotly.js is inlined


def test_wide_ranges_become_weeks_then_months_with_a_periods_worst_honest_code():
    day = 86_400_000_000_000
    start = np.datetime64("2024-01-02T14:31", "ns").astype(np.int64)
    ts = start + np.arange(0, 300) * day  # 300 calendar days of daily bars
    cov = build(["AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"], lambda *_: ts + day - 1, lambda _: {})
    unit, cols = cov.columns(max_columns=120)
    assert unit == "week" and all(c.first <= c.last for c in cols)
    unit, cols = cov.columns(max_columns=20)
    assert unit == "month" and cols[0].label == "2024-01"
    assert period_code(np.array([COMPLETE, COMPLETE])) == COMPLETE
    assert period_code(np.array([COMPLETE, NODATA])) == NODATA
    assert period_code(np.array([MISSING, NODATA])) == MISSING
    assert period_code(np.array([COMPLETE, MISSING])) == PARTIAL
    assert period_code(np.array([OUTSIDE, COMPLETE])) == COMPLETE
    assert period_code(np.array([OUTSIDE, OUTSIDE])) == OUTSIDE


def test_a_set_shows_its_instruments_not_in_the_catalog_as_missing(catalog_dir):
    runs = catalog_dir.parent / "runs-set"
    p = run_make("report", f"CATALOG={catalog_dir}", "SET=mega_caps", runs=runs)
    assert p.returncode == 0, p.stderr[-3000:]
    (summary,) = runs.glob("scan/*/summary.json")
    got = json.loads(summary.read_text())["report"]
    assert (got["bar_types"], got["not_stored"]) == (2, 4)  # AAPL, MSFT stored; 4 never fetched
    assert got["missing"] == 1 + 4 * len(SESSIONS) and got["complete"] == 17
    assert "(and 4 not in the catalog)" in p.stdout
    bad = run_make("report", f"CATALOG={catalog_dir}", "SYMBOL=ZZZZ", runs=runs)
    assert "no bars of ZZZZ.NASDAQ-1-MINUTE-LAST-EXTERNAL in catalog" in bad.stderr

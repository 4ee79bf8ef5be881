"""The data-health findings of ``make report`` (issue 17): ``make check``'s health checks over
every bar type, listed per session in a sortable table linked to the heatmap — rendered in
headless chromium: each finding is in its cell, its counts are ``make check FORMAT=json``'s, a
table row highlights its cell and a cell lists only its own findings."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ntrader.catalog import Catalog
from ntrader.catalog.barframe import random_walk_frame
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.quality.findings import health_findings
from ntrader.quality.health import HealthOptions, check_health
from ntrader.sessions import bar_grid, expand_grid, sessions_between

from .browser import chromium
from .conftest import run_make

MINUTE = 60_000_000_000
AAPL, MSFT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL", "MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory) -> Path:
    """One week of RTH bars: AAPL has 2 bars with high < low on 2024-05-08; MSFT 40 zero-volume
    bars on 2024-05-09 and a 30 % spike on 2024-05-10 (two jumps: up, then back)."""
    root = tmp_path_factory.mktemp("findings") / "catalog"
    catalog = Catalog(root)
    first, counts = bar_grid(
        sessions_between("XNYS", dt.date(2024, 5, 6), dt.date(2024, 5, 10)), MINUTE, "regular"
    )
    ts = expand_grid(first, counts, MINUTE)
    for seed, sym in enumerate(("AAPL", "MSFT"), start=1):
        f = random_walk_frame(ts, seed=seed)
        if sym == "AAPL":
            at = 2 * 390 + 100
            f.high[at : at + 2] = f.low[at : at + 2] - 0.5
        else:
            f.volume[3 * 390 + 10 : 3 * 390 + 50] = 0
            at = 4 * 390 + 200
            f.close[at] = round(f.close[at] * 1.3, 2)
            f.high[at] = f.close[at]
            f.open[at + 1] = f.close[at - 1]  # back where it was: the next open jumps too
            f.low[at + 1] = min(f.low[at + 1], f.open[at + 1])
            f.high[at + 1] = max(f.high[at + 1], f.open[at + 1])
        iid = resolve_instrument_id(sym)
        catalog.write_bars(bar_type_for(iid, "1-MINUTE-LAST"), f, instrument=make_equity(iid, 2))
    return root


class Dom(HTMLParser):
    """The findings table's rows (attributes and cells) and the heatmap divs' data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.divs: dict[str, dict[str, str]] = {}
        self.filter: dict[str, str] | None = None
        self._key: str | None = None
        self._in_findings = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._in_findings = a.get("id") == "findings"
        if tag == "div" and a.get("id", "").startswith("cov-"):
            self.divs[a["id"]] = a
        if tag == "p" and a.get("id") == "findings-filter":
            self.filter = a
        if self._in_findings and tag == "tr" and "data-figure" in a:
            self.rows.append({"attrs": a, "cells": {}})
        if self._in_findings and tag == "td":
            self._key = a.get("data-key")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_findings = False

    def handle_data(self, data: str) -> None:
        if self._key and self.rows:
            self.rows[-1]["cells"][self._key] = data
            self._key = None


@pytest.fixture(scope="module")
def report(catalog_dir) -> dict[str, Any]:
    runs = catalog_dir.parent / "runs"
    p = run_make("report", f"CATALOG={catalog_dir}", runs=runs)
    assert p.returncode == 0, p.stderr[-3000:]
    (found,) = runs.glob("scan/*/summary.json")
    summary = json.loads(found.read_text())
    page = Path(summary["report"]["html"])
    checks = {}
    for sym, bt in (("AAPL", AAPL), ("MSFT", MSFT)):
        c = run_make("check", f"SYMBOL={sym}", f"CATALOG={catalog_dir}", "FORMAT=json", runs=runs)
        assert c.returncode == 0, c.stderr[-2000:]
        checks[bt] = {h["kind"]: h["count"] for h in json.loads(c.stdout)["health"]}
    doms = {}
    with tempfile.TemporaryDirectory(prefix="ntrader-chromium-") as tmp:
        for name, fragment in (
            ("plain", ""),
            ("finding", "#finding-0"),
            ("cell", f"#cell=cov-0|2024-05-10|{MSFT.split('-')[0]}"),
        ):
            dom = Dom()
            dom.feed(chromium(page, Path(tmp) / name, "--dump-dom", fragment=fragment))
            doms[name] = dom
    return {"stdout": p.stdout, "summary": summary, "checks": checks, "doms": doms}


def test_each_finding_is_listed_in_its_session_and_cell(report):
    rows = report["doms"]["plain"].rows
    got = [
        (r["cells"]["bar_type"], r["cells"]["session"], r["attrs"]["data-x"], r["cells"]["kind"],
         r["cells"]["count"])
        for r in rows
    ]  # fmt: skip
    assert got == [
        (AAPL, "2024-05-08", "2024-05-08", "ohlc_inconsistent", "2"),
        (MSFT, "2024-05-09", "2024-05-09", "zero_volume_run", "1"),
        (MSFT, "2024-05-10", "2024-05-10", "jump", "2"),
    ]
    assert [r["attrs"]["data-y"] for r in rows] == ["AAPL.NASDAQ", "MSFT.NASDAQ", "MSFT.NASDAQ"]


def test_the_counts_are_make_checks_and_the_summarys(report):
    shown: Counter[tuple[str, str]] = Counter()
    for r in report["doms"]["plain"].rows:
        shown[(r["cells"]["bar_type"], r["cells"]["kind"])] += int(r["cells"]["count"])
    from_check = {(bt, k): n for bt, kinds in report["checks"].items() for k, n in kinds.items()}
    assert dict(shown) == from_check
    s = report["summary"]["report"]
    assert s["findings"] == 3
    assert (s["findings_ohlc_inconsistent"], s["findings_zero_volume_run"], s["findings_jump"]) == (
        2, 1, 2,
    )  # fmt: skip
    assert (
        "health:  3 finding(s): ohlc_inconsistent 2, zero_volume_run 1, jump 2" in report["stdout"]
    )


def test_a_table_row_highlights_its_cell(report):
    dom = report["doms"]["finding"]
    assert json.loads(dom.divs["cov-0"]["data-highlight"]) == {"x": "2024-05-08",
                                                                "y": "AAPL.NASDAQ"}  # fmt: skip
    (selected,) = [r for r in dom.rows if "selected" in r["attrs"].get("class", "")]
    assert selected["attrs"]["id"] == "finding-0"
    assert "data-highlight" not in report["doms"]["plain"].divs["cov-0"]


def test_a_cell_lists_only_its_own_findings(report):
    dom = report["doms"]["cell"]
    shown = [r["cells"]["kind"] for r in dom.rows if "hidden" not in r["attrs"]]
    assert shown == ["jump"]
    assert dom.filter is not None and "hidden" not in dom.filter
    assert json.loads(dom.filter["data-cell"])["shown"] == 1


def test_findings_sum_to_check_health_and_are_off_when_asked(catalog_dir, tmp_path):
    catalog = Catalog(catalog_dir)
    found = health_findings([AAPL, MSFT], catalog.read, HealthOptions())
    for bt in (AAPL, MSFT):
        issues = check_health(catalog.read(bt), tz="America/New_York")
        assert {i.kind: i.count for i in issues} == {
            k: sum(f.count for f in found if f.bar_type == bt and f.kind == k)
            for k in {f.kind for f in found if f.bar_type == bt}
        }
    assert all(np.datetime64(f.session) for f in found)
    runs = tmp_path / "runs"
    p = run_make("report", f"CATALOG={catalog_dir}", "ARGS=report_health=false", runs=runs)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "health:  not checked (report_health=false)" in p.stdout
    (summary,) = runs.glob("scan/*/summary.json")
    assert "findings" not in json.loads(summary.read_text())["report"]
    bad = run_make("report", f"CATALOG={catalog_dir}", "ARGS=health.jump_threshold=x", runs=runs)
    assert bad.returncode == 2 and "health.jump_threshold='x' is not a number" in bad.stderr
    bad = run_make("report", f"CATALOG={catalog_dir}", "ARGS=report_columns=abc", runs=runs)
    assert bad.returncode == 2 and "report_columns='abc' is not a whole number" in bad.stderr

"""A sweep's picture (issue 17): ``sweep.html`` at the multirun root, rendered in headless
chromium — the heatmap's cells are ``sweep_summary.csv``'s ranking metric over the two swept keys,
the equity curves are the top jobs' ``equity.csv`` and end at their ``final_equity``."""

from __future__ import annotations

import csv
import json
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .browser import chromium
from .test_backtest import catalog_root  # noqa: F401 (the module's catalog fixture)

FAST, ENDS = ["5", "10"], ["2024-01-31", "2024-02-29"]


class Rendered(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.panels: dict[str, list[dict]] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if "data-rendered" in a:
            self.panels[a["id"]] = json.loads(a["data-rendered"])


@pytest.fixture(scope="module")
def sweep(catalog_root, tmp_path_factory):  # noqa: F811
    import os
    import subprocess
    import sys

    from .conftest import REPO

    runs = tmp_path_factory.mktemp("sweep") / "runs"
    p = subprocess.run(
        [
            sys.executable,
            "scripts/backtest.py",
            "-m",
            f"catalog.path={catalog_root}",
            "symbol=AAPL",
            f"strategy.params.fast_ema_period={','.join(FAST)}",
            f"dates.end={','.join(ENDS)}",
            "reports.tearsheet=false",
            "reports.equity_png=false",
        ],
        cwd=REPO,
        env={**os.environ, "NTRADER_RUNS": str(runs)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    (root,) = list((runs / "backtest" / "multirun").iterdir())
    assert f"sweep page: {root / 'sweep.html'}" in p.stdout
    with open(root / "sweep_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with tempfile.TemporaryDirectory(prefix="ntrader-chromium-") as tmp:
        dom = chromium(root / "sweep.html", Path(tmp) / "p", "--dump-dom")
    shown = Rendered()
    shown.feed(dom)
    return {"root": root, "rows": rows, "panels": shown.panels}


def test_the_heatmap_cells_are_the_summary_csvs_metric(sweep):
    (heat,) = sweep["panels"]["heatmap-0"]
    assert heat["x"] == FAST and heat["y"] == ENDS
    for row in sweep["rows"]:
        i, j = ENDS.index(row["dates.end"]), FAST.index(row["strategy.params.fast_ema_period"])
        assert heat["z"][i][j] == pytest.approx(float(row["sharpe"]))


def test_the_curves_are_the_top_jobs_equity(sweep):
    curves = sweep["panels"]["equity-1"]
    assert len(curves) == 4  # top 5 of 4 ok jobs
    ok = [r for r in sweep["rows"] if r["status"] == "ok"]
    best_first = sorted(ok, key=lambda r: -float(r["sharpe"]))  # ranked by sharpe
    for curve, row in zip(curves, best_first, strict=True):
        swept = f"strategy.params.fast_ema_period={row['strategy.params.fast_ema_period']}"
        assert curve["name"] == f"job {row['job']}: {swept} dates.end={row['dates.end']}"
        final = json.loads((Path(row["run_dir"]) / "summary.json").read_text())["result"]
        assert curve["y"][-1] == pytest.approx(final["final_equity"], abs=0.01)
        assert curve["y"][0] == pytest.approx(final["starting_balance"])


def _rows(cs: list[str]) -> list[dict[str, str]]:
    """A synthetic sweep over a × b × c, the metric a function of the three."""
    rows = []
    for n, (a, b, c) in enumerate((a, b, c) for c in cs for b in ("x", "y") for a in ("1", "2")):
        metric = int(a) + 10 * (b == "y") + 100 * cs.index(c)
        rows.append({"job": str(n), "status": "ok", "exit_code": "0", "a": a, "b": b, "c": c,
                     "sharpe": str(metric), "run_dir": f"/nonexistent/{n}"})  # fmt: skip
    return rows


def _shown(page: Path, tmp: Path, fragment: str = "") -> dict[str, dict]:
    dom = chromium(page, tmp / f"p{len(fragment)}", "--dump-dom", fragment=fragment)
    found: dict[str, dict] = {}

    class Divs(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            a = dict(attrs)
            if tag == "div" and "data-rendered" in a:
                found[a["id"]] = {"fig": json.loads(a["data-rendered"])[0],
                                  "fixed": json.loads(a.get("data-fixed") or "{}")}  # fmt: skip

    Divs().feed(dom)
    return found


def test_keys_beyond_two_are_panels_then_a_selector(tmp_path):
    from ntrader.backtest.sweep_page import MAX_PANELS, write_sweep_page

    few = _rows(["c0", "c1"])
    best_first = sorted(few, key=lambda r: -float(r["sharpe"]))  # as the summary ranks them
    written = write_sweep_page(tmp_path / "few", best_first, ["a", "b", "c"], "sharpe")
    panels = _shown(Path(written), tmp_path)
    assert sorted(panels) == ["heatmap-0", "heatmap-1"]  # one panel per value of c
    for n, c in enumerate(["c0", "c1"]):
        shown = panels[f"heatmap-{n}"]
        # axes in the numbers' order, not the ranking's
        assert shown["fixed"] == {"c": c} and shown["fig"]["x"] == ["1", "2"]
        assert shown["fig"]["y"] == ["x", "y"]
        assert shown["fig"]["z"] == [[1 + 100 * n, 2 + 100 * n], [11 + 100 * n, 12 + 100 * n]]

    many = [f"c{i}" for i in range(MAX_PANELS + 1)]  # too many panels: a drop-down for c
    page = Path(write_sweep_page(tmp_path / "many", _rows(many), ["a", "b", "c"], "sharpe"))
    assert page.read_text().count("<option>") == len(many)
    first = _shown(page, tmp_path)
    assert list(first) == ["heatmap-selected"] and first["heatmap-selected"]["fixed"] == {"c": "c0"}
    picked = _shown(page, tmp_path, "#c=c7")["heatmap-selected"]
    assert picked["fixed"] == {"c": "c7"}
    assert picked["fig"]["z"] == [[701, 702], [711, 712]]  # the rows of c=c7, from the summary

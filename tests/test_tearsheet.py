"""``tearsheet.html`` shows the numbers of ``summary.json``, renders in a real browser, and says
why a statistic or a panel is missing; ``equity.png`` carries the same headline.

The run is ``scripts/backtest.py`` as a user runs it (a subprocess, on a catalog of random-walk
minute bars over 66 XNYS sessions: three whole months and five sessions of April 2024). The page
is rendered by headless Debian chromium (``/usr/bin/chromium``, installed by ``.ci/run``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest
from loguru import logger

from ntrader.backtest import BacktestSpec, StrategySpec, run_backtest, summarize, write_reports
from ntrader.backtest.reports import equity_headline
from ntrader.backtest.tearsheet import HEADLINE, NO_SUMMARY, write_tearsheet
from tests.backtest_fixtures import make_catalog, run_engine

from .browser import chromium
from .conftest import REPO

EMA = "nautilus_trader.examples.strategies.ema_cross_long_only"
KINDS = {key: kind for key, _, kind in HEADLINE}
START, END = dt.date(2024, 1, 2), dt.date(2024, 4, 5)
SESSIONS = 21 + 20 + 20 + 5  # XNYS: Jan, Feb (Presidents Day), Mar (Good Friday), Apr 1-5
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Page(HTMLParser):
    """Text of every element carrying ``data-key`` / ``data-reason-for`` / ``data-panel``, and
    the attributes of the ``data-key`` and ``data-month`` elements."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.keys: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.panels: dict[str, str] = {}
        self.months: dict[str, str] = {}
        self.years: dict[str, str] = {}
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self._open: list[tuple[dict[str, str], str, int]] = []  # (target, key, depth)
        self._depth = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        if tag == "link":
            self.links.append(a)
        if tag in VOID:  # no end tag, no content
            return
        self._depth += 1
        for attr, target in (
            ("data-key", self.keys),
            ("data-reason-for", self.reasons),
            ("data-panel", self.panels),
            ("data-month", self.months),
            ("data-year", self.years),
        ):
            if a.get(attr):
                key = str(a[attr])
                target[key] = ""
                self._open.append((target, key, self._depth))
                if attr == "data-key":
                    self.values[key] = str(a.get("data-value") or "")

    def handle_endtag(self, tag: str) -> None:
        self._open = [o for o in self._open if o[2] < self._depth]
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for target, key, _ in self._open:
            target[key] += data


def number(text: str) -> float:
    """A number as displayed: '4,255.47 USD' -> 4255.47, '-2.66%' -> -2.66."""
    found = re.fullmatch(r"(-?[\d,]+\.\d+)(%| [A-Z]{3})?", text.strip())
    assert found, f"not a displayed number: {text!r}"
    return float(found.group(1).replace(",", ""))


def shown_matches(summary: dict[str, Any], page: Page, key: str) -> None:
    """The page shows ``summary[key]`` at display precision (two decimals), or "n/a" + reason."""
    value = summary.get(key)
    if value is None:
        assert page.keys[key] == "n/a", (key, page.keys[key])
        reason = (summary.get("unavailable") or {}).get(key)
        if reason:
            assert page.reasons[key] == reason, key
        return
    expected = value * 100.0 if KINDS[key] == "fraction" else value
    assert abs(number(page.keys[key]) - expected) <= 0.005 + 1e-9, (key, page.keys[key], value)
    assert float(page.values[key]) == value, key  # the machine-readable copy is exact
    if KINDS[key] == "money":
        assert page.keys[key].endswith(f" {summary['currency']}"), key


def strategy(**params: Any) -> StrategySpec:
    base = {"trade_size": 100, "fast_ema_period": 10, "slow_ema_period": 20}
    return StrategySpec(
        path=f"{EMA}:EMACrossLongOnly",
        config_path=f"{EMA}:EMACrossLongOnlyConfig",
        params={**base, **params, "request_historical_bars": False},
    )


@pytest.fixture(scope="module")
def script_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``scripts/backtest.py`` over 66 sessions: summary.json, the tearsheet and its parse."""
    root = tmp_path_factory.mktemp("tearsheet")
    make_catalog(root / "catalog", "AAPL", START, END, seed=5)
    env = {**os.environ, "NTRADER_RUNS": str(root / "runs")}
    env.pop("NAUTILUS_PATH", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "backtest.py"),
            f"catalog.path={root / 'catalog'}",
            "symbol=AAPL",
            "ibkr.auto_fetch=false",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (summary_path,) = (root / "runs").rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    run_dir = Path(summary["run_dir"])
    html = (run_dir / "tearsheet.html").read_text(encoding="utf-8")
    return {"summary": summary, "result": summary["result"], "dir": run_dir, "html": html}


@pytest.fixture(scope="module")
def browser(script_run: dict[str, Any]) -> dict[str, Any]:
    """The run's tearsheet rendered by chromium: a screenshot (RGB array) and the DOM after JS."""
    page = script_run["dir"] / "tearsheet.html"
    with tempfile.TemporaryDirectory(prefix="ntrader-chromium-") as tmp:
        shot = Path(tmp) / "shot.png"
        chromium(page, Path(tmp) / "profile-1", f"--screenshot={shot}")
        assert shot.is_file(), "chromium wrote no screenshot"
        image = mpimg.imread(shot)
        dom = chromium(page, Path(tmp) / "profile-2", "--dump-dom")
    return {"pixels": (np.asarray(image)[..., :3] * 255).round().astype(int), "dom": dom}


def test_headline_shows_the_numbers_of_summary_json(script_run: dict[str, Any]) -> None:
    result, page = script_run["result"], Page(script_run["html"])
    assert set(page.keys) >= set(KINDS)
    # A run that traded: these are numbers in summary.json, so the page must show them.
    for key in ("return_pct", "pnl", "final_equity", "max_drawdown_pct", "sharpe", "win_rate"):
        assert isinstance(result[key], float), key
    assert result["max_drawdown_pct"] > 0 and result["fills"] > 100
    for key in KINDS:
        shown_matches(result, page, key)


def test_panels_agree_with_the_summary(script_run: dict[str, Any]) -> None:
    result, page = script_run["result"], Page(script_run["html"])
    # Trades: every position cycle of positions.csv, closed on stop.
    assert page.keys["trades.closed"] == f"{result['positions']:,}"
    assert page.keys["trades.open"] == "0"
    wins, losses = int(page.keys["trades.winners"]), int(page.keys["trades.losers"])
    assert wins + losses <= result["positions"] and wins > 0 and losses > 0
    assert page.keys["trades.win_rate"] == page.keys["win_rate"]
    assert abs(number(page.keys["trades.net"]) - result["realized_pnl"]) <= 0.005 + 1e-9
    assert number(page.keys["trades.best"]) > 0 > number(page.keys["trades.worst"])
    # Monthly returns compound to the run's return; April 2024 is marked partial.
    assert sorted(page.months) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert page.months["2024-04"].endswith("*") and not page.months["2024-03"].endswith("*")
    assert "2024-04: 5 of 22 sessions" in page.panels["monthly-partial"]
    compounded = np.prod([1 + float(number(v.rstrip("*"))) / 100 for v in page.months.values()])
    assert abs((compounded - 1) * 100 - result["return_pct"]) < 0.03
    assert abs(number(page.years["2024"]) - result["return_pct"]) <= 0.005 + 1e-9
    # Exposure over the run's sessions; 66 sessions are enough for the rolling Sharpe.
    shown = re.fullmatch(r"(\d+) of (\d+) \(.*%\)", page.keys["exposure.sessions"])
    assert shown, page.keys["exposure.sessions"]
    held, total = int(shown.group(1)), int(shown.group(2))
    assert total == SESSIONS == result["sessions"] and 0 < held <= SESSIONS
    assert 0 < number(page.keys["exposure.time"]) <= 100
    assert "rolling-sharpe" not in page.panels and 'id="rolling-sharpe-plot"' in script_run["html"]


def test_page_is_self_contained(script_run: dict[str, Any]) -> None:
    page = Page(script_run["html"])
    assert not [s for s in page.scripts if s.get("src")]  # plotly.js is inline
    assert not [link for link in page.links if link.get("href")]
    assert len(script_run["html"]) > 3_000_000  # the plotly.js bundle itself
    assert "EMACrossLongOnly · AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL" in script_run["html"]


def test_chromium_renders_the_plots(browser: dict[str, Any]) -> None:
    pixels = browser["pixels"]
    assert pixels.shape == (2000, 1200, 3)
    flat = pixels.reshape(-1, 3)
    assert len(np.unique(flat, axis=0)) > 200

    def count(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(flat - np.asarray(rgb)).max(axis=1) <= 8).sum())

    assert count((229, 236, 246)) > 100_000  # plotly's plot-area background
    assert count((31, 119, 180)) > 300  # the equity line
    assert count((214, 39, 40)) > 300  # the drawdown line
    assert count((26, 127, 55)) > 1_000 and count((192, 57, 43)) > 1_000  # up / down sessions


def test_rendered_axes_are_dates_and_amounts(browser: dict[str, Any]) -> None:
    dom = browser["dom"]
    assert dom.count('class="main-svg"') >= 6  # equity, returns, rolling Sharpe: JS ran
    for plot in ("equity-plot", "returns-plot", "rolling-sharpe-plot"):
        assert f'id="{plot}"' in dom, plot
    assert dom.count('class="js-line"') >= 3  # equity, drawdown and rolling Sharpe lines
    xticks = re.findall(r'class="xtick"><text[^>]*data-unformatted="([^"]*)"', dom)
    assert len(xticks) >= 6
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", t) for t in xticks), xticks
    yticks = re.findall(r'class="ytick"><text[^>]*>([^<]*)</text>', dom)
    assert any(re.fullmatch(r"\d{3},\d{3}", t) for t in yticks), yticks  # equity: 101,000


def test_none_statistics_read_na_with_their_reason(tmp_path: Path) -> None:
    """One session and EMAs that never warm up: no trade, no ratio — each says why."""
    cat, _ = make_catalog(tmp_path / "catalog", "AAPL", dt.date(2024, 3, 1), dt.date(2024, 3, 1))
    spec = BacktestSpec.of("AAPL", strategy(fast_ema_period=100, slow_ema_period=500))
    result = run_backtest(spec, cat)
    summary = result.summary
    assert summary["fills"] == 0
    missing = [k for k in ("sharpe", "sortino", "win_rate", "profit_factor") if summary[k] is None]
    assert missing == ["sharpe", "sortino", "win_rate", "profit_factor"]
    assert all(summary["unavailable"].get(k) for k in missing), summary["unavailable"]
    path = tmp_path / "tearsheet.html"
    write_tearsheet(
        path, equity=result.equity, summary=summary, positions=result.positions, calendar="XNYS"
    )
    page = Page(path.read_text(encoding="utf-8"))
    for key in missing:
        assert page.keys[key] == "n/a" and page.reasons[key] == summary["unavailable"][key], key
    for key in KINDS:
        shown_matches(summary, page, key)
    assert page.panels["rolling-sharpe"] == (
        "Rolling Sharpe (63 sessions) needs at least 64 sessions; this run has 1."
    )
    assert page.panels["trades"] == "No trades: the strategy opened no position."
    assert "2024-03: 1 of 20 sessions" in page.panels["monthly-partial"]
    assert page.keys["exposure.sessions"] == "0 of 1 (0.0%)"


def test_write_reports_passes_the_summary_to_both_pictures(tmp_path: Path) -> None:
    cat, bar_type = make_catalog(
        tmp_path / "catalog", "AAPL", dt.date(2024, 3, 4), dt.date(2024, 3, 8), seed=3
    )
    engine, venue = run_engine(cat, bar_type, run_analysis=False, fast_recorder=True)
    summary = summarize(engine, venue)
    summary["unavailable"] = {"sortino": "a reason given by the summary"}
    summary["sortino"] = None
    summary.pop("final_equity", None)
    files = write_reports(engine, venue, tmp_path / "with", title="five days", summary=summary)
    bare = write_reports(engine, venue, tmp_path / "without", title="five days")
    assert {"tearsheet", "equity"} <= set(files) and {"tearsheet", "equity"} <= set(bare)
    page = Page(Path(files["tearsheet"]).read_text(encoding="utf-8"))
    for key in KINDS:
        shown_matches(summary, page, key)
    assert page.reasons["sortino"] == "a reason given by the summary"
    assert page.keys["final_equity"] == "n/a"
    assert page.reasons["final_equity"] == "not in this run's summary"
    line = equity_headline(summary)
    assert line == (
        f"Return {page.keys['return_pct']} · max drawdown {page.keys['max_drawdown_pct']} · "
        f"Sharpe {page.keys['sharpe']}"
    )
    assert mpimg.imread(files["equity"]).shape[:2] == (650, 1100)
    # Without a summary nothing is made up: every headline number is n/a, saying why.
    without = Page(Path(bare["tearsheet"]).read_text(encoding="utf-8"))
    assert all(without.keys[k] == "n/a" and without.reasons[k] == NO_SUMMARY for k in KINDS)
    assert without.keys["trades.closed"] == page.keys["trades.closed"] != "0"


def test_a_tearsheet_that_cannot_be_written_is_a_warning(tmp_path: Path) -> None:
    cat, bar_type = make_catalog(tmp_path / "c", "AAPL", dt.date(2024, 3, 1), dt.date(2024, 3, 1))
    engine, venue = run_engine(cat, bar_type, run_analysis=False)
    out = tmp_path / "out"
    (out / "tearsheet.html").mkdir(parents=True)  # a directory where the page should go
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        files = write_reports(engine, venue, out, summary=summarize(engine, venue))
    finally:
        logger.remove(sink)
    assert set(files) == {"fills", "positions", "orders", "account", "equity_csv", "equity"}
    assert any("tearsheet not written: IsADirectoryError" in m for m in messages), messages
    assert (out / "tearsheet.html").is_dir()  # nothing of ours removed it

"""Run-folder outputs of a backtest: CSVs, equity PNG, tearsheet, and a summary that agrees."""

from __future__ import annotations

import datetime as dt
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ntrader.backtest import (
    SHARPE,
    SORTINO,
    equity_series,
    stats_equal,
    summarize,
    write_reports,
)
from ntrader.backtest.reports import EMPTY_HEADERS
from tests.backtest_fixtures import make_catalog, run_engine

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CSVS = ("fills", "positions", "orders", "account")
SUMMARY_KEYS = {
    "currency",
    "bars",
    "orders",
    "fills",
    "positions",
    "starting_balance",
    "ending_balance",
    "pnl",
    "return_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "win_rate",
    "profit_factor",
    "expectancy",
    "commissions",
    "nautilus_stats",
}
COMMISSION = 1.25  # USD per order


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("reports") / "catalog"
    return make_catalog(root, "AAPL", dt.date(2024, 3, 1), dt.date(2024, 3, 15), seed=11)


@pytest.fixture(scope="module", params=[("long_only", "CASH"), ("ema_cross", "MARGIN")])
def run(request, catalog, tmp_path_factory) -> dict[str, Any]:
    """One run without Nautilus' analysis (fees on), its reports and summary."""
    strategy, account = request.param
    cat, bar_type = catalog
    engine, venue = run_engine(
        cat,
        bar_type,
        run_analysis=False,
        strategy=strategy,
        account=account,
        commission=COMMISSION,
        fast_recorder=True,
    )
    assert engine.portfolio.analyzer._account_balances == {}  # really not analysed yet
    out = tmp_path_factory.mktemp(f"run-{strategy}-{account}")
    files = write_reports(engine, venue, out, title=f"{strategy} test")
    return {
        "engine": engine,
        "venue": venue,
        "account": account,
        "files": files,
        "summary": summarize(engine, venue),
        "csv": {name: pd.read_csv(files[name]) for name in CSVS},
    }


def _money(column: pd.Series) -> pd.Series:
    """'-4.00 USD' -> -4.0; "['1.25 USD']" -> 1.25."""
    return column.astype(str).str.extract(r"(-?\d+(?:\.\d+)?)")[0].astype(float)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_all_files_written(run) -> None:
    files = run["files"]
    assert set(files) == {*CSVS, "equity_csv", "equity", "tearsheet"}
    for path in files.values():
        assert Path(path).is_file() and Path(path).stat().st_size > 0, path
    assert _png_size(Path(files["equity"])) == (1100, 650)
    html = Path(files["tearsheet"]).read_text()
    assert "plotly" in html.lower() and "<div" in html
    assert "long_only test" in html or "ema_cross test" in html  # the title reached it


def test_csv_headers_match_the_empty_fallback(run) -> None:
    # If Nautilus renames a column, the header written for empty reports must follow.
    for name in CSVS:
        assert list(run["csv"][name].columns) == EMPTY_HEADERS[name], name


def test_summary_counts_match_csvs(run, catalog) -> None:
    s, csv, engine = run["summary"], run["csv"], run["engine"]
    cat, bar_type = catalog
    assert set(s) == SUMMARY_KEYS
    assert s["bars"] == engine.iteration == len(cat.read_bars(bar_type)) == 11 * 390
    assert s["fills"] == len(csv["fills"]) > 50
    assert s["orders"] == len(csv["orders"]) > 50
    assert s["positions"] == len(csv["positions"]) > 20
    assert s["fills"] == len(engine.trader.generate_fills_report())
    assert s["orders"] == len(engine.cache.orders())
    # One row per fill, not per order: every fill's order is in orders.csv, filled quantities agree.
    filled = csv["fills"].groupby("client_order_id")["last_qty"].sum()
    orders = csv["orders"].set_index("client_order_id")
    assert set(filled.index) <= set(orders.index)
    assert (orders.loc[filled.index, "filled_qty"] == filled).all()


def test_summary_money_matches_csvs(run) -> None:
    s, csv = run["summary"], run["csv"]
    total = csv["account"]["total"].astype(float)
    assert s["currency"] == "USD"
    assert s["starting_balance"] == total.iloc[0] == 100_000.0
    assert s["ending_balance"] == total.iloc[-1]
    assert s["pnl"] == pytest.approx(s["ending_balance"] - s["starting_balance"], abs=1e-9)
    assert s["pnl"] == s["nautilus_stats"]["pnls"]["USD"]["PnL (total)"]
    assert s["return_pct"] == pytest.approx(s["pnl"] / s["starting_balance"] * 100, rel=1e-12)

    # Fees: a fixed amount per order, charged on its first fill.
    commissions = _money(csv["fills"]["commission"])
    assert s["commissions"] == pytest.approx(commissions.sum(), abs=1e-6)
    assert s["commissions"] == pytest.approx(COMMISSION * csv["orders"]["filled_qty"].gt(0).sum())

    # Every position is closed on stop, so realized PnLs (net of fees) add up to the P&L.
    positions = csv["positions"]
    assert (positions["side"] == "FLAT").all()
    realized = _money(positions["realized_pnl"])
    assert realized.sum() == pytest.approx(s["pnl"], abs=1e-6)
    assert s["win_rate"] == pytest.approx((realized > 0).mean(), rel=1e-12)
    assert s["expectancy"] == pytest.approx(realized.mean(), rel=1e-9)
    gross_profit, gross_loss = realized[realized > 0].sum(), -realized[realized < 0].sum()
    assert s["profit_factor"] == pytest.approx(gross_profit / gross_loss, rel=1e-12)


def test_summary_ratios_are_nautilus(run) -> None:
    s = run["summary"]
    stats = s["nautilus_stats"]
    assert s["sharpe"] == stats["returns"][SHARPE] and isinstance(s["sharpe"], float)
    assert s["sortino"] == stats["returns"][SORTINO] and isinstance(s["sortino"], float)
    assert s["win_rate"] == stats["pnls"]["USD"]["Win Rate"]
    assert s["expectancy"] == stats["pnls"]["USD"]["Expectancy"]
    long_ratio = stats["general"]["Long Ratio"]
    assert long_ratio == 1.0 if run["account"] == "CASH" else 0.3 < long_ratio < 0.7
    text = json.dumps(s, allow_nan=False)  # strictly valid JSON: no NaN/Infinity
    assert json.loads(text) == s


def test_max_drawdown_from_closed_trade_equity(run) -> None:
    """With one instrument, equity after each fill is start + realized PnL so far, less the fee
    of a position just opened: its drawdown is the closed-trade drawdown, plus at most a fee."""
    s, positions = run["summary"], run["csv"]["positions"].sort_values("ts_closed")
    curve = s["starting_balance"] + np.r_[0.0, _money(positions["realized_pnl"]).cumsum()]
    equity = equity_series(run["engine"], run["venue"])
    assert equity.index.is_unique and equity.index.is_monotonic_increasing
    assert equity.iloc[0] == s["starting_balance"] and equity.iloc[-1] == s["ending_balance"]
    closed_dd = -((curve / np.maximum.accumulate(curve)) - 1.0).min() * 100
    # Opening fees dip equity by at most one commission below the closed-trade curve.
    assert closed_dd - 1e-9 <= s["max_drawdown_pct"] <= closed_dd + 100 * COMMISSION / curve.min()
    assert 0 < s["max_drawdown_pct"] < 5
    peak = equity.cummax()
    assert s["max_drawdown_pct"] == pytest.approx(-((equity / peak - 1).min()) * 100, rel=1e-12)
    if run["account"] == "CASH":
        # The raw cash balance dips by each purchase's full cost; equity must not.
        cash = run["csv"]["account"]["total"].astype(float)
        assert (cash.cummax() - cash).max() > 10_000
        assert (peak - equity).max() < 1_000


def test_same_summary_with_nautilus_analysis(run, catalog) -> None:
    cat, bar_type = catalog
    strategy = "long_only" if run["account"] == "CASH" else "ema_cross"
    engine, venue = run_engine(
        cat,
        bar_type,
        run_analysis=True,
        strategy=strategy,
        account=run["account"],
        commission=COMMISSION,
    )
    assert stats_equal(summarize(engine, venue), run["summary"])


def test_no_trades_still_writes_valid_files(tmp_path: Path) -> None:
    cat, bar_type = make_catalog(tmp_path / "c", "AAPL", dt.date(2024, 3, 1), dt.date(2024, 3, 1))
    # 390 bars never warm up a 500-bar EMA: no orders at all.
    engine, venue = run_engine(
        cat, bar_type, run_analysis=False, fast_ema_period=100, slow_ema_period=500
    )
    files = write_reports(engine, venue, tmp_path / "out")
    assert set(files) == {*CSVS, "equity_csv", "equity", "tearsheet"}
    for name in ("fills", "positions", "orders"):
        text = Path(files[name]).read_text()
        assert text == ",".join(EMPTY_HEADERS[name]) + "\n", name
        frame = pd.read_csv(files[name])
        assert frame.empty and list(frame.columns) == EMPTY_HEADERS[name]
    account = pd.read_csv(files["account"])
    assert list(account.columns) == EMPTY_HEADERS["account"] and len(account) == 1
    assert _png_size(Path(files["equity"])) == (1100, 650)

    s = summarize(engine, venue)
    assert (s["bars"], s["orders"], s["fills"], s["positions"]) == (390, 0, 0, 0)
    assert s["pnl"] == 0.0 and s["max_drawdown_pct"] == 0.0 and s["commissions"] == 0.0
    assert s["ending_balance"] == s["starting_balance"] == account["total"].iloc[0]
    assert s["win_rate"] is None and s["profit_factor"] is None and s["sharpe"] is None
    json.dumps(s, allow_nan=False)


def test_optional_outputs_can_be_skipped(tmp_path: Path, run) -> None:
    files = write_reports(run["engine"], run["venue"], tmp_path, tearsheet=False, equity_png=False)
    assert set(files) == {*CSVS, "equity_csv"}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*(f"{n}.csv" for n in CSVS), "equity.csv"])

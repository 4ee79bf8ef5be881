"""Backtests that stop early, trade nothing they should or mix bases never say "ok" (issue 12 §1).

Each test runs ``make backtest`` or ``scripts/backtest.py`` as a user does, on a real catalog, and
reads the run folder: exit code, ``status``, the console and ``summary.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from .backtest_fixtures import make_catalog
from .conftest import REPO
from .test_make_vars import MAKE, clean_env

SET = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL"]
EMA_CROSS = "nautilus_trader.examples.strategies.ema_cross"


@pytest.fixture(scope="module")
def five_symbols(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("five") / "catalog"
    for i, s in enumerate(SET):
        make_catalog(root, s, dt.date(2024, 1, 2), dt.date(2024, 1, 31), seed=i + 1)
    return root


def _summary(runs: Path) -> dict:
    found = sorted(runs.glob("backtest/*/summary.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def test_make_backtest_of_a_set_that_runs_out_of_cash_is_incomplete(five_symbols, tmp_path):
    """300 shares of each of five ~$180 stocks on $100k: Nautilus stops the engine with
    AccountBalanceNegative on the first crosses. The run must not say ok."""
    runs = tmp_path / "runs"
    args = [
        *MAKE,
        "backtest",
        f"CATALOG={five_symbols}",
        f"RUNS={runs}",
        "START=2024-01-02",
        "END=2024-01-31",
        "ARGS=instruments.symbols=[" + ",".join(SET) + "] strategy.params.trade_size=300 "
        "reports.tearsheet=false ibkr.auto_fetch=false",
    ]
    p = subprocess.run(args, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr[-3000:]  # make's own code for a failed recipe
    assert "exited with code 1" in p.stderr + p.stdout
    s = _summary(runs)
    assert s["status"] == "incomplete" and s["exit_code"] == 1
    eng = s["engine"]
    assert eng["stopped_early"] is True
    assert eng["bars_loaded"] == 5 * 21 * 390
    assert 0 < eng["bars_processed"] < eng["bars_loaded"]
    assert eng["stop_error"] == "AccountBalanceNegative"
    assert "AccountBalanceNegative(balance=-" in eng["stop_reason"]
    stopped = pd.Timestamp(eng["stopped_at"])
    assert pd.Timestamp("2024-01-02 09:30", tz="America/New_York") < stopped
    assert stopped < pd.Timestamp("2024-01-31 16:00", tz="America/New_York")
    (problem,) = s["problems"]
    assert problem["check"] == "stopped_early"
    assert (
        eng["stopped_at"] in problem["message"]
        and f"{eng['bars_processed']:,}" in problem["message"]
    )
    for fix in ("strategy.params.trade_size=", "venue.starting_balance=", "venue=margin"):
        assert fix in problem["hint"]
    assert "STOPPED EARLY" in p.stdout and "INCOMPLETE" in p.stdout
    assert "venue=margin" in p.stderr  # the hint reaches the console
    # the ledger ends where the engine stopped: no session after it is marked
    assert s["result"]["sessions"] <= 1 and s["result"]["sharpe"] is None
    assert Path(s["run_dir"], "fills.csv").exists()  # what the run did is still written


def test_the_same_run_with_enough_cash_is_ok(five_symbols, run_script):
    r = run_script(
        "backtest",
        f"catalog.path={five_symbols}",
        "instruments.symbols=[" + ",".join(SET) + "]",
        "strategy.params.trade_size=300",
        "venue.starting_balance=1000000",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "ibkr.auto_fetch=false",
    )
    assert r.code == 0, r.stderr[-3000:]
    s = r.summary()
    assert s["status"] == "ok" and "problems" not in s
    assert s["engine"] == {"bars_loaded": 40950, "bars_processed": 40950, "stopped_early": False}


def test_allow_early_stop_accepts_it_loudly(five_symbols, run_script):
    r = run_script(
        "backtest",
        f"catalog.path={five_symbols}",
        "instruments.symbols=[" + ",".join(SET) + "]",
        "strategy.params.trade_size=300",
        "checks.allow_early_stop=true",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "ibkr.auto_fetch=false",
    )
    assert r.code == 0, r.stderr[-3000:]
    assert r.summary()["engine"]["stopped_early"] is True
    assert "allowed by checks.allow_early_stop" in r.stderr and "STOPPED EARLY" in r.stdout


def _ema_cross_on_cash(catalog: Path, run_script, *more: str):
    return run_script(
        "backtest",
        f"catalog.path={catalog}",
        "symbol=AAPL",
        "strategy=ema_cross",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "ibkr.auto_fetch=false",
        *more,
    )


def test_rejected_orders_are_counted_warned_and_fail_the_run(five_symbols, run_script):
    """EMACross sells short; a CASH account rejects every short sale."""
    r = _ema_cross_on_cash(five_symbols, run_script)
    assert r.code == 1, r.stderr[-3000:]
    s = r.summary()
    res = s["result"]
    assert s["status"] == "incomplete"
    assert res["orders_rejected"] > 0.5 * res["orders"]
    assert res["orders_denied"] == 0
    top = res["rejection_reasons"][0]
    assert top["count"] == res["orders_rejected"]  # one kind of reason, counted together
    assert "SHORT SELLING not permitted on a CASH account" in top["reason"]
    assert "MarketOrder(" in top["example"] and "MarketOrder(" not in top["reason"]
    (problem,) = s["problems"]
    assert problem["check"] == "rejected_orders"
    assert "venue=margin" in problem["hint"]
    assert f"{res['orders_rejected']:,} of {res['orders']:,} orders" in r.stderr  # the WARNING
    orders = pd.read_csv(Path(s["run_dir"]) / "orders.csv")
    assert (orders.status == "REJECTED").sum() == res["orders_rejected"]


def test_rejections_below_the_threshold_warn_but_pass(five_symbols, run_script):
    r = _ema_cross_on_cash(five_symbols, run_script, "checks.max_rejected_pct=100")
    assert r.code == 0, r.stderr[-3000:]
    res = r.summary()["result"]
    assert res["orders_rejected"] > 0
    assert "WARNING" in r.stderr and "were rejected or denied" in r.stderr


def test_on_a_margin_account_nothing_is_rejected(five_symbols, run_script):
    r = _ema_cross_on_cash(five_symbols, run_script, "venue=margin")
    assert r.code == 0, r.stderr[-3000:]
    res = r.summary()["result"]
    assert res["orders_rejected"] == 0 and res["rejection_reasons"] == []
    assert "rejected or denied" not in r.stderr


def test_summary_states_its_basis_and_splits_realized_from_unrealized(five_symbols, run_script):
    """A position left open at the end (EMACrossLongOnly keeps holding after the last bar when
    close_positions_on_stop=false): pnl is marked to market, realized + unrealized = pnl."""
    r = run_script(
        "backtest",
        f"catalog.path={five_symbols}",
        "symbol=AAPL",
        "dates.start=2024-01-02",
        "dates.end=2024-01-31",
        "+strategy.params.close_positions_on_stop=false",
        "reports.tearsheet=false",
        "ibkr.auto_fetch=false",
    )
    assert r.code == 0, r.stderr[-3000:]
    res = r.summary()["result"]
    start = res["starting_balance"]
    assert res["pnl"] == pytest.approx(res["final_equity"] - start, abs=1e-6)
    assert res["return_pct"] == pytest.approx(res["pnl"] / start * 100)
    assert res["realized_pnl"] + res["unrealized_pnl"] == pytest.approx(res["pnl"], abs=1e-6)
    (pos,) = res["open_positions"].values()
    assert pos["qty"] > 0
    assert res["unrealized_pnl"] == pytest.approx(pos["qty"] * (pos["mark"] - pos["avg_px"]))
    # CASH: the cash balance is net of the shares still held, the equity is not
    assert res["final_equity"] == pytest.approx(res["ending_balance"] + pos["qty"] * pos["mark"])
    # the equity curve (and so equity.png) ends at final_equity
    account = pd.read_csv(Path(r.summary()["run_dir"]) / "account.csv")
    assert account.total.iloc[-1] == pytest.approx(res["ending_balance"])
    for key in ("pnl", "realized_pnl", "unrealized_pnl", "sharpe", "max_drawdown_pct", "win_rate"):
        assert res["basis"][key], key
    assert "marked to market" in res["basis"]["pnl"] and "daily" in res["basis"]["sharpe"]


def test_ratios_over_too_few_sessions_are_null_with_the_reason(five_symbols, run_script):
    r = run_script(
        "backtest",
        f"catalog.path={five_symbols}",
        "symbol=AAPL",
        "dates.start=2024-01-02",
        "dates.end=2024-01-05",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "ibkr.auto_fetch=false",
    )
    assert r.code == 0, r.stderr[-3000:]
    res = r.summary()["result"]
    assert res["sessions"] == 4
    for key in ("sharpe", "sortino", "volatility_pct"):
        assert res[key] is None
        assert "needs at least 20 sessions" in res["unavailable"][key]
        assert "this run has 4" in res["unavailable"][key]
    assert "Sharpe n/a: needs at least 20 sessions" in r.stdout
    # the same run with the threshold lowered gives a number again
    r2 = run_script(
        "backtest",
        f"catalog.path={five_symbols}",
        "symbol=AAPL",
        "dates.start=2024-01-02",
        "dates.end=2024-01-05",
        "checks.min_sessions_for_ratios=3",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        "ibkr.auto_fetch=false",
    )
    assert r2.code == 0 and isinstance(r2.summary()["result"]["sharpe"], float)


@pytest.mark.parametrize(
    "override",
    [
        "checks.max_rejected_pct=150",
        "checks.min_sessions_for_ratios=1",
        "checks.allow_early_stop=maybe",
    ],
)
def test_bad_check_values_are_input_errors(five_symbols, run_script, override):
    r = _ema_cross_on_cash(five_symbols, run_script, override)
    assert r.code == 2, r.stderr[-2000:]
    assert override.split("=")[0] in r.stderr

"""`scripts/backtest.py` run as a user runs it, on a catalog built by the import path."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntrader.catalog.barframe import random_walk_frame
from ntrader.catalog.catalog import Catalog
from ntrader.importing.importer import import_csv
from ntrader.importing.reader import CsvSpec
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.sessions import expected_bar_closes, sessions_between

from .conftest import REPO

MINUTE = 60_000_000_000


def vendor_csv(path: Path, start: dt.date, end: dt.date, seed: int, skip=()) -> int:
    """A vendor-style CSV (bar OPEN stamps, naive New York time) for XNYS sessions."""
    s = sessions_between("XNYS", start, end)
    closes = expected_bar_closes(s, MINUTE)
    f = random_walk_frame(closes, seed=seed)
    opens = pd.DatetimeIndex(closes - MINUTE, tz="UTC").tz_convert("America/New_York")
    keep = ~np.isin(opens.date, list(skip))
    df = pd.DataFrame(
        {
            "Date": opens.strftime("%Y-%m-%d %H:%M:%S"),
            "Open": f.open,
            "High": f.high,
            "Low": f.low,
            "Close": f.close,
            "Volume": f.volume.astype(int),
        }
    )[keep]
    df.to_csv(path, index=False, float_format="%.2f")
    return len(df)


@pytest.fixture(scope="module")
def catalog_root(tmp_path_factory) -> Path:
    """AAPL Jan–Feb 2024 and MSFT Jan 2024 with session 2024-01-17 missing, imported from CSV."""
    d = tmp_path_factory.mktemp("bt")
    root = d / "catalog"
    for sym, end, seed, skip in [
        ("AAPL", dt.date(2024, 2, 29), 11, ()),
        ("MSFT", dt.date(2024, 1, 31), 12, (dt.date(2024, 1, 17),)),
    ]:
        vendor_csv(d / f"{sym}.csv", dt.date(2024, 1, 2), end, seed, skip)
        iid = resolve_instrument_id(sym)
        import_csv(
            Catalog(root), d / f"{sym}.csv", iid, bar_type_for(iid, "1-MINUTE-LAST"), spec=CsvSpec()
        )
    return root


def csv_rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_end_to_end_reports_are_consistent(catalog_root, run_script, tmp_path):
    r = run_script("backtest", f"catalog.path={catalog_root}", "symbol=AAPL")
    assert r.code == 0, r.stderr
    s = r.summary()
    run_dir = Path(s["run_dir"])
    res = s["result"]
    assert (
        res["bars"] == Catalog(catalog_root).availability("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL").rows
    )
    for name in (
        "fills.csv",
        "positions.csv",
        "orders.csv",
        "account.csv",
        "equity.csv",
        "equity.png",
        "tearsheet.html",
        "backtest.log",
        ".hydra/config.yaml",
    ):
        assert (run_dir / name).exists(), name
    assert res["fills"] > 10 and res["fills"] == len(csv_rows(run_dir / "fills.csv"))
    assert res["positions"] == len(csv_rows(run_dir / "positions.csv"))
    assert res["orders"] == len(csv_rows(run_dir / "orders.csv"))
    assert res["ending_balance"] == pytest.approx(res["starting_balance"] + res["pnl"], abs=0.01)
    assert (run_dir / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = csv_rows(run_dir / "equity.csv")  # the daily marked-to-market curve of the metrics
    assert float(curve[0]["equity"]) == pytest.approx(res["starting_balance"])
    assert float(curve[-1]["equity"]) == pytest.approx(res["final_equity"], abs=0.01)
    assert "15,990 bars of AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL in the catalog" in r.stderr
    assert "streamed 10,000 at a time" in r.stderr
    assert "Backtest AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL" in r.stdout
    assert set(s["timings"]) >= {"availability+load", "run", "reports"}
    # reproducible: the saved config alone gives the same numbers
    again = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "backtest.py"),
            "--config-dir",
            str(run_dir / ".hydra"),
            "--config-name",
            "config",
            "+hydra=default",
            "tag=rerun",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"NTRADER_RUNS": str(tmp_path / "rerun"), "PATH": "/usr/bin:/bin"},
    )
    assert again.returncode == 0, again.stderr
    (rerun_summary,) = (tmp_path / "rerun").rglob("summary.json")
    s2 = json.loads(rerun_summary.read_text())
    assert s2["result"] == res and rerun_summary.parent.name.endswith("_rerun")


def test_missing_instrument_is_exit_1(catalog_root, run_script):
    r = run_script("backtest", f"catalog.path={catalog_root}", "symbol=NVDA")
    assert r.code == 1
    assert "NVDA.NASDAQ: no instrument in catalog" in r.stderr
    assert "make fetch SYMBOLS=NVDA.NASDAQ" in r.stderr and "make import CSV=" in r.stderr


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_range_outside_the_data_is_exit_1(catalog_root, run_script):
    r = run_script(
        "backtest",
        f"catalog.path={catalog_root}",
        "symbol=AAPL",
        "dates.start=2023-06-01",
        "dates.end=2023-06-30",
        "ibkr.auto_fetch=false",
    )
    assert r.code == 1
    assert "no 1-MINUTE-LAST bars between 2023-06-01 and 2023-06-30" in r.stderr
    assert "make fetch SYMBOLS=AAPL.NASDAQ START=2023-06-01 END=2023-06-30" in r.stderr


def test_ibkr_down_during_auto_fetch_is_exit_3(catalog_root, run_script):
    port = free_port()  # nothing listens there
    r = run_script(
        "backtest", f"catalog.path={catalog_root}", "symbol=MSFT", env={"IBKR_PORT": str(port)}
    )
    assert r.code == 3, r.stderr
    assert f"IBKR is not reachable at 127.0.0.1:{port}" in r.stderr
    assert "start IB Gateway or TWS" in r.stderr and "make import CSV=" in r.stderr
    assert "2024-01-17" in r.stderr and "ibkr.auto_fetch=false" in r.stderr
    s = r.summary()
    assert s["exit_code"] == 3 and s["error"]["kind"] == "connection error"


def test_zero_bars_of_that_bar_type_is_exit_1(catalog_root, run_script):
    r = run_script(
        "backtest", f"catalog.path={catalog_root}", "symbol=AAPL", "bars.spec=5-MINUTE-LAST"
    )
    assert r.code == 1 and "AAPL.NASDAQ: no 5-MINUTE-LAST bars in catalog" in r.stderr


def test_missing_sessions_are_listed_with_commands(catalog_root, run_script):
    r = run_script(
        "backtest", f"catalog.path={catalog_root}", "symbol=MSFT", "ibkr.auto_fetch=false"
    )
    assert r.code == 1
    assert "MSFT.NASDAQ: 1 of 21 sessions missing: 2024-01-17 (1 session)" in r.stderr
    assert "make fetch SYMBOLS=MSFT.NASDAQ START=2024-01-17 END=2024-01-17" in r.stderr
    ok = run_script(
        "backtest",
        f"catalog.path={catalog_root}",
        "symbol=MSFT",
        "data.allow_missing_sessions=true",
        "reports.tearsheet=false",
    )
    assert ok.code == 0, ok.stderr
    assert "running anyway" in ok.stderr


def test_custom_strategy_from_config(catalog_root, run_script):
    r = run_script(
        "backtest",
        f"catalog.path={catalog_root}",
        "symbol=AAPL",
        "strategy=opening_range",
        "dates=2024q1",
        "dates.end=2024-02-29",
        "reports.tearsheet=false",
    )
    assert r.code == 0, r.stderr
    s = r.summary()
    assert s["strategy"]["path"] == "ntrader.strategies.opening_range:OpeningRange"
    assert s["result"]["fills"] > 0


def test_bad_strategy_params_are_input_errors(catalog_root, run_script):
    r = run_script(
        "backtest",
        f"catalog.path={catalog_root}",
        "symbol=AAPL",
        "+strategy.params.no_such_param=1",
    )
    assert r.code == 2 and "strategy config" in r.stderr and "no_such_param" in r.stderr


def test_sweep_2x2_with_summary(catalog_root, run_script, tmp_path):
    r = run_script(
        "backtest",
        "-m",
        f"catalog.path={catalog_root}",
        "symbol=AAPL",
        "strategy.params.fast_ema_period=5,10",
        "dates.end=2024-01-31,2024-02-29",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        timeout=600,
    )
    assert r.code == 0, r.stderr
    (root,) = list((tmp_path / "runs" / "backtest" / "multirun").iterdir())
    jobs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.isdigit())
    assert [d.name for d in jobs] == ["0", "1", "2", "3"]
    rows = csv_rows(root / "sweep_summary.csv")
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert len({r["overrides"] for r in rows}) == 4
    for row, job in zip(rows, jobs, strict=True):
        s = json.loads((job / "summary.json").read_text())
        assert float(row["pnl"]) == pytest.approx(s["result"]["pnl"])
        assert (job / "fills.csv").exists() and (job / "backtest.log").exists()
        assert not list(job.glob("nautilus*.log"))  # one Rust logger per process: not per job
    assert "| rank |" in (root / "leaderboard.md").read_text()


def test_sweep_with_a_failing_job(catalog_root, run_script, tmp_path):
    r = run_script(
        "backtest",
        "-m",
        f"catalog.path={catalog_root}",
        "symbol=AAPL,NVDA",
        "dates.end=2024-02-29",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        timeout=600,
    )
    (root,) = list((tmp_path / "runs" / "backtest" / "multirun").iterdir())
    rows = csv_rows(root / "sweep_summary.csv")
    (ok,) = [r for r in rows if "symbol=AAPL" in r["overrides"].split()]
    (bad,) = [r for r in rows if "symbol=NVDA" in r["overrides"].split()]
    assert ok["status"] == "ok" and ok["exit_code"] == "0"
    assert bad["status"] == "failed" and bad["exit_code"] == "1"
    assert "no instrument" in bad["error"]
    assert "FAILED (exit 1)" in r.stdout
    assert r.code == 1  # the sweep ran every job, then exits with the worst job's code


def test_parallel_sweep_through_the_joblib_launcher(catalog_root, run_script, tmp_path):
    r = run_script(
        "backtest",
        "-m",
        f"catalog.path={catalog_root}",
        "symbol=AAPL",
        "strategy.params.fast_ema_period=5,10",
        "dates.end=2024-01-31",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "reports.tearsheet=false",
        "reports.equity_png=false",
        timeout=600,
    )
    assert r.code == 0, r.stderr
    (root,) = list((tmp_path / "runs" / "backtest" / "multirun").iterdir())
    rows = csv_rows(root / "sweep_summary.csv")
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert rows[0]["pnl"] != rows[1]["pnl"]  # two different parameter sets really ran
    assert "joblib" in (root / "multirun.yaml").read_text()
    for job in ("0", "1"):  # each worker logs into its own job's folder, tagged with its run id
        log = (root / job / "backtest.log").read_text()
        assert (
            f"[backtest/{root.name}/{job}]" in log
            and "bars of AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL in the catalog" in log
        )

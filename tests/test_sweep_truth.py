"""`make sweep` that must auto-fetch, with parallel jobs (JOBS=2), against the bundled TWS simulator
through the real ib_async client, into an empty catalog — and what its summary and console say.

* The sweep fetches the union of what its jobs need once, before launching them: every job
  succeeds, every (symbol, session) is requested from the simulator exactly once (overlapping
  date ranges of different jobs included), no job fetches, the catalog holds the simulator's bars.
* A symbol IBKR does not know fails its own job (exit 1), not the others': they were fetched anyway.
* `sweep_summary.csv` has a column per swept key holding the job's value (checked against the
  job's own resolved config), and each job's console block is headed by its swept values.

Each sweep runs once per module (a fixture); the simulator runs in a thread of the test process on
a free loopback port and stops with the fixture; catalog and run folders are temp dirs.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from ntrader.catalog.catalog import Catalog
from ntrader.ibkr.sim import Faults, ground_truth, run_simulator
from ntrader.ibkr.sim.server import HistoricalRequest
from ntrader.sessions import sessions_between

from .conftest import REPO

MINUTE = 60_000_000_000
START = dt.date(2024, 5, 6)
ENDS = (dt.date(2024, 5, 8), dt.date(2024, 5, 10))  # overlapping ranges: 05-06..05-08 is in both
SYMBOLS = ("AAPL", "MSFT")
PERIODS = (5, 10)
QUIET = "reports.tearsheet=false reports.equity_png=false ibkr.chunk_sessions=1"


@dataclass
class Sweep:
    code: int
    stdout: str
    stderr: str
    root: Path  # the sweep folder
    rows: list[dict[str, str]]
    header: list[str]
    requests: list[HistoricalRequest]
    catalog: Path

    def job_dir(self, row: dict[str, str]) -> Path:
        return self.root / row["job"]


def make_env(port: int) -> dict[str, str]:
    """The caller's environment without make flags or ntrader settings, IBKR at the simulator."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "NAUTILUS_PATH", "IBKR_CLIENT_ID"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("NTRADER_")}
    return {**env, "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(port)}


def run_sweep(tmp: Path, faults: Faults | None = None, **variables: str) -> Sweep:
    """`make sweep VAR=value …` into an empty catalog (an empty directory) and a runs root
    under ``tmp``."""
    catalog, runs = tmp / "catalog", tmp / "runs"
    catalog.mkdir()
    with run_simulator(faults) as sim:
        args = [f"{k}={v}" for k, v in variables.items()]
        args += ["JOBS=2", f"CATALOG={catalog}", f"RUNS={runs}"]
        p = subprocess.run(
            ["make", "-s", "-o", ".venv/.synced", "sweep", *args],
            cwd=REPO,
            env=make_env(sim.port),
            capture_output=True,
            text=True,
            timeout=600,
        )
        requests = sim.requests
    found = sorted((runs / "backtest" / "multirun").glob("*/sweep_summary.csv"))
    assert len(found) == 1, f"exit {p.returncode}, no sweep summary:\n{p.stderr[-4000:]}"
    with found[0].open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    return Sweep(p.returncode, p.stdout, p.stderr, found[0].parent, rows, header, requests, catalog)


def session_of(req: HistoricalRequest) -> dt.date:
    """The session a one-session request asks for: its end is that session's close (UTC); a US
    regular session closes on the same UTC date."""
    assert req.duration == "1 D", req
    return dt.datetime.strptime(req.end_date_time[:8], "%Y%m%d").date()


def assert_catalog_is_the_simulators(catalog: Path, symbol: str, start: dt.date, end: dt.date):
    truth = ground_truth(symbol, start, end)
    got = Catalog(catalog).read(f"{symbol}.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    np.testing.assert_array_equal(got.ts_event, truth["ts_open_ns"] + MINUTE)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(got, col), truth[col])


def job_config(sweep: Sweep, row: dict[str, str]):
    return OmegaConf.load(sweep.job_dir(row) / ".hydra" / "config.yaml")


# ------------------------------------------------------------------ a sweep that must auto-fetch


@pytest.fixture(scope="module")
def fetching_sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """2 symbols x 2 (overlapping) date ranges x 2 EMA periods = 8 jobs, JOBS=2, empty catalog."""
    ends = ",".join(str(e) for e in ENDS)
    periods = ",".join(str(p) for p in PERIODS)
    return run_sweep(
        tmp_path_factory.mktemp("fetching-sweep"),
        SYMBOLS=",".join(SYMBOLS),
        START=str(START),
        ARGS=f"dates.end={ends} strategy.params.fast_ema_period={periods} {QUIET}",
    )


def test_parallel_jobs_that_need_data_all_succeed(fetching_sweep):
    s = fetching_sweep
    assert s.code == 0, s.stderr[-4000:]
    assert len(s.rows) == len(SYMBOLS) * len(ENDS) * len(PERIODS)
    assert [(r["status"], r["exit_code"]) for r in s.rows] == [("ok", "0")] * len(s.rows)
    assert "a fetch is already running" not in s.stdout + s.stderr
    for row in s.rows:  # the row is the job's own summary.json: a real, non-empty backtest
        summary = json.loads((s.job_dir(row) / "summary.json").read_text())
        assert summary["status"] == "ok" and summary["exit_code"] == 0
        cfg = job_config(s, row)
        sessions = len(sessions_between("XNYS", START, dt.date.fromisoformat(cfg.dates.end)))
        assert summary["result"]["bars"] == 390 * sessions


def test_every_job_succeeds_and_every_session_is_fetched_exactly_once(fetching_sweep):
    s = fetching_sweep
    assert [r["status"] for r in s.rows] == ["ok"] * len(s.rows), s.stdout[-3000:]
    assert s.requests and all(q.outcome == "ok" for q in s.requests)
    asked = Counter((q.symbol, session_of(q)) for q in s.requests)
    needed = {
        (sym, d) for sym in SYMBOLS for d in sessions_between("XNYS", START, max(ENDS)).date_list()
    }
    assert set(asked) == needed  # the union of every job's needs, nothing else
    assert set(asked.values()) == {1}  # once each, though 4 jobs want each AAPL / MSFT session
    for sym in SYMBOLS:
        assert_catalog_is_the_simulators(s.catalog, sym, START, max(ENDS))


def test_the_sweep_fetched_before_its_jobs_and_no_job_fetched(fetching_sweep):
    s = fetching_sweep
    log = (s.root / "fetch.log").read_text()
    assert f"{len(s.rows)} of {len(s.rows)} jobs need data" in log
    assert f"Fetched {390 * 5 * len(SYMBOLS):,} bars in {5 * len(SYMBOLS)} requests" in log
    for row in s.rows:
        job_log = (s.job_dir(row) / "backtest.log").read_text()
        assert "fetching from IBKR" not in job_log and " in the catalog, first " in job_log
        summary = json.loads((s.job_dir(row) / "summary.json").read_text())
        assert "auto_fetch" not in summary["timings"] and "fetched_bars" not in summary["counts"]
    assert "fetched once for 8 job(s) before launching them: 3,900 bars in 10 requests" in s.stdout


def test_the_summary_has_a_column_per_swept_key_with_the_jobs_value(fetching_sweep):
    s = fetching_sweep
    swept = ["symbol", "dates.end", "strategy.params.fast_ema_period"]
    assert s.header[: 1 + len(swept)] == ["job", *swept]
    assert "overrides" in s.header  # the full overrides stay
    for row in s.rows:  # the value is the one the job really ran with
        cfg = job_config(s, row)
        assert row["symbol"] == cfg.symbol
        assert row["dates.end"] == str(cfg.dates.end)
        assert row["strategy.params.fast_ema_period"] == str(cfg.strategy.params.fast_ema_period)
    combos = {(r["symbol"], r["dates.end"], r["strategy.params.fast_ema_period"]) for r in s.rows}
    assert combos == {(a, str(e), str(p)) for a in SYMBOLS for e in ENDS for p in PERIODS}
    board = (s.root / "leaderboard.md").read_text()
    assert "| rank | job | symbol | dates.end | strategy.params.fast_ema_period |" in board


def test_each_jobs_console_block_is_headed_by_its_swept_values(fetching_sweep):
    s = fetching_sweep
    lines = s.stdout.splitlines()
    n = len(s.rows)
    for row in s.rows:
        job = int(row["job"])
        head = (
            f"job {job + 1}/{n} (folder {job}): symbol={row['symbol']} "
            f"dates.end={row['dates.end']} "
            f"strategy.params.fast_ema_period={row['strategy.params.fast_ema_period']}"
        )
        assert lines.count(head) == 1, (head, s.stdout[-4000:])
        # the block: the heading, then that job's own result lines, not another job's
        after = lines[lines.index(head) + 1]
        assert after == f"Backtest {row['symbol']}.NASDAQ-1-MINUTE-LAST-EXTERNAL", after
        assert head in (s.job_dir(row) / "backtest.log").read_text()


# ------------------------------------------------------------------ a symbol IBKR does not know


@pytest.fixture(scope="module")
def unknown_symbol_sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """ZZZZ (unknown to IBKR) listed first, then AAPL: 2 jobs, JOBS=2, empty catalog."""
    return run_sweep(
        tmp_path_factory.mktemp("unknown-symbol-sweep"),
        Faults(unknown_symbols=["ZZZZ"]),
        SYMBOLS="ZZZZ,AAPL",
        START="2024-05-13",
        END="2024-05-14",
        ARGS=QUIET,
    )


def test_an_unknown_symbol_fails_its_own_job_and_the_others_data_is_still_fetched(
    unknown_symbol_sweep,
):
    s = unknown_symbol_sweep
    assert s.code == 2 and "scripts/backtest.py exited with code 1" in s.stderr, s.stderr[-3000:]
    by_symbol = {r["symbol"]: r for r in s.rows}
    assert s.header[:2] == ["job", "symbol"] and set(by_symbol) == {"ZZZZ", "AAPL"}
    bad, ok = by_symbol["ZZZZ"], by_symbol["AAPL"]
    assert (bad["status"], bad["exit_code"]) == ("failed", "1")
    assert "no security definition for ZZZZ" in bad["error"]
    assert (ok["status"], ok["exit_code"]) == ("ok", "0")
    assert "a fetch is already running" not in s.stdout + s.stderr
    aapl = [q for q in s.requests if q.symbol == "AAPL"]
    assert sorted(session_of(q) for q in aapl) == [dt.date(2024, 5, 13), dt.date(2024, 5, 14)]
    assert all(q.outcome == "ok" for q in aapl)
    assert "fetching from IBKR" not in (s.job_dir(ok) / "backtest.log").read_text()
    assert_catalog_is_the_simulators(s.catalog, "AAPL", dt.date(2024, 5, 13), dt.date(2024, 5, 14))
    lines = s.stdout.splitlines()
    head = f"job {int(bad['job']) + 1}/2 (folder {bad['job']}): symbol=ZZZZ"
    after = lines[lines.index(head) + 1]
    assert re.match(r"  failed with exit code 1: data error: .*no security definition", after)
    assert "FAILED (exit 1)  symbol=ZZZZ: data error" in s.stdout

"""A plan before the work (issue 16 §1): every fetch logs its plan — requests, missing sessions,
the least wall time IB's pacing allows — before it connects; ``PLAN=1`` (``fetch.dry_run=true``)
prints only the plan, sends nothing, writes nothing and exits 0."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from bench.fetch_bench import pacing_bound_s

from ntrader.ibkr.fetchplan import duration, implied_wall_s
from ntrader.ibkr.pacing import PacingRules
from ntrader.ibkr.sim import run_simulator

from .conftest import run_make
from .test_fetch import fetch


@pytest.mark.parametrize("n", [0, 1, 5, 6, 59, 60, 61, 122, 300])
def test_the_pacing_estimate_of_one_contract_is_the_bound_the_bench_computes(n):
    """Two implementations of IB's rules (the bench's array recurrence and the planner's queue)
    agree for one contract; many contracts only lift the per-contract limit."""
    keys = ["AAPL.NASDAQ"] * n
    assert implied_wall_s(keys) == pytest.approx(pacing_bound_s(n))
    spread = [f"S{i % 7}" for i in range(n)]
    assert implied_wall_s(spread) <= implied_wall_s(keys)
    assert implied_wall_s(["A"] * 122) == pytest.approx(1200.0)  # 20 minutes, as IB makes it
    assert duration(1200) == "20:00" and duration(3836) == "1:03:56" and duration(42) == "0:42"
    assert implied_wall_s(keys, PacingRules(max_requests=1000)) <= implied_wall_s(keys)


def _make_fetch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_make("fetch", *args, runs=tmp_path / "runs", env={"IBKR_PORT": "1"})


def test_plan_1_prints_the_plan_and_sends_nothing(tmp_path):
    catalog = tmp_path / "catalog"
    # port 1: nothing listens — a dry run that tried to connect would exit 3
    p = _make_fetch(
        tmp_path,
        "SYMBOLS=AAPL,MSFT",
        "START=2024-01-02",
        "END=2024-03-28",
        "PLAN=1",
        f"CATALOG={catalog}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    head = (
        "Plan: 122 requests for 122 missing session(s) of 2 bar type(s): at least 20:00 at "
        "IB's pacing limit of 60 per 10 min"
    )
    assert p.stdout.startswith(head) and "plan only (fetch.dry_run=true)" in p.stdout
    assert "nothing sent to IBKR 127.0.0.1:1" in p.stdout
    assert "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL                61        61" in p.stdout
    assert not catalog.exists()  # nothing written, not even a new catalog
    (summary,) = (tmp_path / "runs").glob("fetch/*/summary.json")
    s = json.loads(summary.read_text())
    assert s["status"] == "ok" and s["counts"]["requests"] == 0
    assert s["plan"] == {
        "dry_run": True,
        "requests": 122,
        "sessions_missing": 122,
        "pacing_s": 1200.0,
    }
    bogus = _make_fetch(tmp_path, "SYMBOLS=AAPL", "PLAN=maybe")
    assert bogus.returncode == 2 and "PLAN='maybe' is not 1 or 0" in bogus.stderr


def test_a_fetch_logs_its_plan_before_it_connects_and_keeps_to_it(run_script, tmp_path):
    root = tmp_path / "catalog"
    with run_simulator() as sim:
        r = fetch(run_script, sim, root, "2024-03-04", "2024-03-08", symbols="AAPL,MSFT")
        assert r.code == 0, r.stderr[-3000:]
        sent = len(sim.requests)
    plan = r.stderr.index("Plan: 10 requests for 10 missing session(s) of 2 bar type(s)")
    assert plan < r.stderr.index("connected to IBKR")
    s = r.summary()
    assert s["plan"]["requests"] == s["counts"]["requests"] == sent == 10
    assert s["plan"]["dry_run"] is False
    # again: nothing missing, the plan says so and nothing is sent
    with run_simulator() as sim:
        again = fetch(run_script, sim, root, "2024-03-04", "2024-03-08", symbols="AAPL,MSFT")
        assert again.code == 0 and sim.requests == []
    assert "Plan: 0 requests: the catalog holds every session asked" in again.stderr
    assert "Nothing to fetch (0 requests" in again.stdout

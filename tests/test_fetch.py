"""`scripts/fetch.py` and the backtest's auto-fetch against the project's TWS simulator, driven by
the real ib_async client over loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ntrader.catalog.catalog import Catalog
from ntrader.ibkr.client import IbkrSettings
from ntrader.ibkr.fetcher import Fetcher, FetchTarget
from ntrader.ibkr.pacing import PacingGuard, PacingRules, RealClock
from ntrader.ibkr.plan import optimal_request_count
from ntrader.ibkr.sim import Faults, ground_truth, run_simulator
from ntrader.instruments import bar_type_for, resolve_instrument_id
from ntrader.sessions import sessions_between

from .conftest import REPO

BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
MINUTE = 60_000_000_000


def fetch(run_script, sim, root, start, end, *extra, symbols="AAPL", env=None):
    e = {"IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(sim.port), **(env or {})}
    return run_script(
        "fetch",
        f"symbols=[{symbols}]",
        f"dates.start={start}",
        f"dates.end={end}",
        f"catalog.path={root}",
        *extra,
        env=e,
    )


def assert_exact(root, symbol, start, end):
    """The catalog holds exactly the simulator's bars: nothing missing, nothing duplicated."""
    truth = ground_truth(symbol, start, end)
    got = Catalog(root).read(f"{symbol}.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    np.testing.assert_array_equal(got.ts_event, truth["ts_open_ns"] + MINUTE)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(got, col), truth[col])
    np.testing.assert_array_equal(got.volume, truth["volume"].astype(float))


def test_fetch_is_exact_across_dst_and_chunks_and_a_rerun_asks_nothing(run_script, tmp_path):
    root = tmp_path / "catalog"
    start, end = dt.date(2024, 3, 4), dt.date(2024, 3, 15)  # DST switch on 2024-03-10
    with run_simulator() as sim:
        r = fetch(run_script, sim, root, start, end, "ibkr.chunk_sessions=3")
        assert r.code == 0, r.stderr
        assert_exact(root, "AAPL", start, end)
        ok = [q for q in sim.requests if q.outcome == "ok"]
        missing = sessions_between("XNYS", start, end).date_list()
        assert len(ok) == optimal_request_count(missing, calendar="XNYS", chunk_sessions=3) == 4
        assert r.summary()["instruments"][0]["bars"] == 10 * 390
        n = len(sim.requests)
        again = fetch(run_script, sim, root, start, end, "ibkr.chunk_sessions=3")
        assert again.code == 0 and len(sim.requests) == n  # zero requests
        assert again.summary()["instruments"][0]["requests"] == 0
        inst = Catalog(root).instrument("AAPL.NASDAQ")
        assert inst is not None and inst.price_precision == 2  # from the contract's minTick


@pytest.mark.parametrize(
    "faults,outcome",
    [(Faults(disconnect_after=2), "disconnect"), (Faults(timeout_every=2), "timeout")],
    ids=["disconnect", "timeout"],
)
def test_disconnects_and_timeouts_are_retried(run_script, tmp_path, faults, outcome):
    """A retry is an identical request, so IB's 15 s identical-request rule paces it. A lost
    connection is an outage ridden out (tests/test_nightly_reset.py), not a retry used up."""
    root = tmp_path / "catalog"
    start, end = dt.date(2024, 5, 6), dt.date(2024, 5, 8)
    with run_simulator(faults) as sim:
        r = fetch(run_script, sim, root, start, end, "ibkr.request_timeout=1")
        assert r.code == 0, r.stderr
        assert outcome in [q.outcome for q in sim.requests]
        rep = r.summary()["instruments"][0]
        if outcome == "disconnect":
            assert rep["retries"] == 0 and len(rep["outages"]) >= 1
        else:
            assert rep["retries"] >= 1 and rep["outages"] == []
    assert_exact(root, "AAPL", start, end)


def test_no_data_sessions_are_recorded_and_not_asked_again(run_script, tmp_path):
    root = tmp_path / "catalog"
    start, end = dt.date(2024, 5, 6), dt.date(2024, 5, 10)
    with run_simulator(Faults(no_data_sessions=[dt.date(2024, 5, 8)])) as sim:
        r = fetch(run_script, sim, root, start, end)
        assert r.code == 0, r.stderr
        rep = r.summary()["instruments"][0]
        assert (rep["nodata_sessions"], rep["nodata"]) == (1, ["2024-05-08"])
        assert rep["bars"] == 4 * 390
        n = len(sim.requests)
        assert fetch(run_script, sim, root, start, end).code == 0
        assert len(sim.requests) == n


def test_unknown_symbol_is_exit_1(run_script, tmp_path):
    with run_simulator(Faults(unknown_symbols=["ZZZZ"])) as sim:
        r = fetch(run_script, sim, tmp_path / "c", "2024-05-06", "2024-05-06", symbols="ZZZZ")
    assert r.code == 1 and "no security definition for ZZZZ" in r.stderr


def test_client_id_in_use_and_ibkr_down_are_exit_3(run_script, tmp_path):
    with run_simulator(Faults(client_id_in_use=[17])) as sim:
        r = fetch(run_script, sim, tmp_path / "c", "2024-05-06", "2024-05-06")
        assert r.code == 3 and "client id 17: already in use" in r.stderr
        assert "IBKR_CLIENT_ID" in r.stderr
        port = sim.port
    r = fetch(
        run_script, type("Dead", (), {"port": port})(), tmp_path / "c", "2024-05-06", "2024-05-06"
    )
    assert r.code == 3 and f"IBKR is not reachable at 127.0.0.1:{port}" in r.stderr


def test_server_pacing_errors_back_off_and_complete(tmp_path):
    """A guard looser than IB's rules: the simulator answers 162 pacing violations, the fetcher
    pauses all sends and retries until everything is in."""
    start, end = dt.date(2024, 5, 6), dt.date(2024, 5, 17)
    catalog = Catalog(tmp_path / "catalog")
    with run_simulator(Faults(pacing=True)) as sim:
        clock = RealClock()
        loose = PacingGuard(clock, PacingRules(per_contract_max=50, identical_gap_s=0.1))
        fetcher = Fetcher(
            catalog,
            IbkrSettings(port=sim.port, retries=8, request_timeout=5),
            guard=loose,
            pacing_pause_s=2.1,
            show_progress=False,
        )
        iid = resolve_instrument_id("AAPL")
        (rep,) = asyncio.run(
            fetcher.run([FetchTarget(bar_type_for(iid, "1-MINUTE-LAST"), start, end)])
        )
        assert any(q.outcome == "pacing" for q in sim.requests)
        assert rep.retries >= 1 and rep.sessions_fetched == 10
    assert_exact(tmp_path / "catalog", "AAPL", start, end)


def test_our_guard_never_trips_the_servers_pacing_rules(run_script, tmp_path):
    root = tmp_path / "catalog"
    with run_simulator(Faults(pacing=True)) as sim:
        r = fetch(run_script, sim, root, "2024-04-01", "2024-04-12")
        assert r.code == 0, r.stderr
        assert [q.outcome for q in sim.requests] == ["ok"] * 10


def _fetch_cmd(port, root, start, end):
    env = {**os.environ, "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(port)}
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "fetch.py"),
        "symbols=[AAPL]",
        f"dates.start={start}",
        f"dates.end={end}",
        f"catalog.path={root}",
    ]
    return cmd, env


def test_sigkill_mid_fetch_then_rerun_is_exactly_complete(tmp_path):
    root = tmp_path / "catalog"
    start, end = dt.date(2024, 6, 3), dt.date(2024, 6, 14)
    with run_simulator(Faults(delay_ms=250)) as sim:
        cmd, env = _fetch_cmd(sim.port, root, start, end)
        env["NTRADER_RUNS"] = str(tmp_path / "runs")
        p = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while sum(q.outcome == "ok" for q in sim.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
        partial = Catalog(root).read(BT)
        assert 0 < len(partial) < 10 * 390  # killed mid-way, what landed is readable
        r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert_exact(root, "AAPL", start, end)


def test_a_second_fetch_on_the_same_catalog_is_refused(tmp_path):
    root = tmp_path / "catalog"
    # the first fetch takes 15 s (5 requests of 3 s): room for the second to start on a busy machine
    with run_simulator(Faults(delay_ms=3000)) as sim:
        cmd, env = _fetch_cmd(sim.port, root, dt.date(2024, 6, 3), dt.date(2024, 6, 7))
        env["NTRADER_RUNS"] = str(tmp_path / "runs")
        first = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while not sim.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        assert second.returncode == 4
        assert "a fetch is already running on catalog" in second.stderr
        assert first.wait(120) == 0


def test_backtest_auto_fetches_missing_sessions(run_script, tmp_path):
    root = tmp_path / "catalog"
    root.mkdir()  # an empty catalog; a missing one is exit 1 (a mistyped CATALOG=), not a fetch
    with run_simulator() as sim:
        env = {"IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(sim.port)}
        args = (
            f"catalog.path={root}",
            "symbol=AAPL",
            "dates.start=2024-05-06",
            "dates.end=2024-05-10",
            "reports.tearsheet=false",
        )
        r = run_script("backtest", *args, env=env)
        assert r.code == 0, r.stderr
        assert "Fetched 1,950 bars from IBKR in" in r.stderr
        assert "saved to the catalog; later runs load them from disk" in r.stderr
        assert r.summary()["result"]["bars"] == 1950
        n = len(sim.requests)
        again = run_script("backtest", *args, env=env)
        assert again.code == 0 and "Fetched" not in again.stderr and len(sim.requests) == n
    assert_exact(root, "AAPL", dt.date(2024, 5, 6), dt.date(2024, 5, 10))


@pytest.mark.parametrize("hours,bars", [("true", 390), ("false", 960)])
def test_extended_hours(run_script, tmp_path, hours, bars):
    with run_simulator() as sim:
        r = fetch(
            run_script, sim, tmp_path / "c", "2024-05-07", "2024-05-07", f"ibkr.use_rth={hours}"
        )
    assert r.code == 0, r.stderr
    assert r.summary()["instruments"][0]["bars"] == bars


def test_backtest_auto_fetch_waits_for_a_running_fetch(tmp_path):
    """Another process holds the fetch lock: the backtest's auto-fetch says it waits, goes on
    once the lock is free, and fetches what is still missing (instead of exit 4)."""
    root = tmp_path / "catalog"
    catalog = Catalog(root)
    (root / ".ntrader").mkdir(parents=True)
    lock = catalog.store.lock("fetch")
    lock.acquire(timeout=0)
    err = tmp_path / "stderr.txt"
    with run_simulator() as sim:
        env = {
            **os.environ,
            "NTRADER_RUNS": str(tmp_path / "runs"),
            "IBKR_HOST": "127.0.0.1",
            "IBKR_PORT": str(sim.port),
        }
        env.pop("NAUTILUS_PATH", None)
        args = [
            sys.executable,
            str(REPO / "scripts" / "backtest.py"),
            f"catalog.path={root}",
            "symbol=AAPL",
            "dates.start=2024-05-06",
            "dates.end=2024-05-07",
            "reports.tearsheet=false",
            "reports.equity_png=false",
        ]
        with open(err, "w") as fh:
            p = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=fh)
        try:
            deadline = time.monotonic() + 120
            while "waiting up to" not in err.read_text() and p.poll() is None:
                assert time.monotonic() < deadline, err.read_text()[-2000:]
                time.sleep(0.1)
            assert p.poll() is None, err.read_text()[-3000:]  # waiting, not failed
            assert sim.requests == []  # nothing asked while the other fetch holds the lock
            lock.release()
            assert p.wait(timeout=180) == 0, err.read_text()[-3000:]
        finally:
            if p.poll() is None:
                p.kill()
    text = err.read_text()
    assert "waiting up to 600 s for the fetch running on catalog" in text
    assert "Fetched 780 bars from IBKR" in text

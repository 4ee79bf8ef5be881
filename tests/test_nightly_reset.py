"""The nightly reset (issue 16 §5): a connection lost mid-fetch — IB Gateway's daily restart
(socket closed, port refusing) or IB's servers away (error 1100 on an open socket, then 1102) —
is waited for and the fetch resumes where it was, with a clear log line; beyond
``ibkr.reconnect_window_s`` it fails with exit 3 and the catalog keeps what was fetched."""

from __future__ import annotations

import datetime as dt

import pytest

from ntrader.catalog import Catalog
from ntrader.ibkr.sim import Faults, run_simulator

from .test_fetch import assert_exact, fetch

START, END = dt.date(2024, 5, 6), dt.date(2024, 5, 10)  # 5 sessions: 5 requests
BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"


@pytest.mark.parametrize("keep_socket", [False, True], ids=["gateway-restart", "error-1100"])
def test_a_reset_mid_fetch_is_waited_out_and_the_fetch_completes(run_script, tmp_path, keep_socket):
    root = tmp_path / "catalog"
    faults = Faults(restart_after=2, restart_s=3, restart_keep_socket=keep_socket)
    with run_simulator(faults) as sim:
        r = fetch(run_script, sim, root, START, END, "ibkr.request_timeout=60")
        assert r.code == 0, r.stderr[-3000:]
        outcomes = [q.outcome for q in sim.requests]
    assert outcomes[2] == "restart" and outcomes.count("ok") == 5  # the lost request asked again
    assert "error 1100" in r.stderr or "connection" in r.stderr.lower()
    assert "IB Gateway's nightly restart or IB's reset? reconnecting for up to 15:00" in r.stderr
    assert "during request 3 of 5" in r.stderr and "resuming request 3 of 5" in r.stderr
    rep = r.summary()["instruments"][0]
    (outage,) = rep["outages"]
    assert outage["attempts"] >= 2  # the first try came while IB was still away
    if keep_socket:
        assert outage["cause"].startswith("error 1100: Connectivity between IB and Trader")
        assert "unanswered" not in outcomes  # nothing was sent while IB was away
    assert rep["retries"] == 0  # an outage is not a retry used up
    assert rep["requests"] == 5
    assert_exact(root, "AAPL", START, END)


def test_beyond_the_window_the_fetch_fails_and_keeps_what_it_fetched(run_script, tmp_path):
    root = tmp_path / "catalog"
    with run_simulator(Faults(restart_after=2, restart_s=600)) as sim:
        r = fetch(run_script, sim, root, START, END, "ibkr.reconnect_window_s=2")
        assert r.code == 3, r.stderr[-3000:]
        assert "was not back within 0:02 (ibkr.reconnect_window_s)" in r.stderr
        assert "ibkr.reconnect_window_s=1800 waits longer" in r.stderr
        s = r.summary()
        assert s["status"] == "failed" and s["exit_code"] == 3
        first_two = Catalog(root).read(BT)
        assert len(first_two.ts_event) == 2 * 390  # the sessions before the reset are kept
        sim.sim.end_restart()
        again = fetch(run_script, sim, root, START, END)  # the same command finishes the job
        assert again.code == 0, again.stderr[-3000:]
    assert_exact(root, "AAPL", START, END)


def test_the_window_is_validated(run_script, tmp_path):
    r = run_script(
        "fetch",
        "symbols=[AAPL]",
        f"catalog.path={tmp_path}",
        "ibkr.reconnect_window_s=-5",
        env={"IBKR_PORT": "1"},
    )
    assert r.code == 2 and "ibkr.reconnect_window_s must be 0 .. 86400 seconds" in r.stderr

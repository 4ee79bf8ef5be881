"""Progress that tells the truth (issue 16 §1): a pacing wait is said as such ("waiting 9:36 for
IB pacing"), the ETA comes from the pacing schedule, and log lines go above the bar on a
terminal, never into it."""

from __future__ import annotations

import datetime as dt
import os
import re
import sys

from bench.fetch_bench import fetch as fetch_in_virtual_time
from loguru import logger

from ntrader.ibkr.progress import pacing_eta
from ntrader.ibkr.sim import run_simulator

from .conftest import run_on_pty

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_the_eta_follows_the_window_rule():
    sent = [i * 0.4 for i in range(60)]  # 60 sends in the first 24 s
    assert pacing_eta(sent, 24.0, 1, 60, 600.0) == 576.0  # the 61st waits for the window
    assert pacing_eta(sent, 24.0, 61, 60, 600.0) == 1200.0 - 24.0  # two windows on
    assert pacing_eta(sent[-10:], 24.0, 20, 60, 600.0) == 0.0  # room left in the window
    assert pacing_eta(sent, 24.0, 0, 60, 600.0) == 0.0


def test_a_pacing_wait_is_said_as_such(tmp_path):
    """61 one-session requests against the simulator in virtual time: the 61st waits for IB's
    10-minute window, and the fetch says so (and how long) before it waits."""
    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{message}")
    try:
        run = fetch_in_virtual_time(tmp_path / "catalog", dt.date(2024, 1, 2), dt.date(2024, 3, 28))
    finally:
        logger.remove(sink)
    assert run.requests == 61 and run.guard_violations == 0
    waits = [m for ln in lines if (m := re.match(r"waiting (\d+):(\d\d) for IB pacing", ln))]
    assert len(waits) == 1, lines
    said = int(waits[0].group(1)) * 60 + int(waits[0].group(2))
    assert 540 <= said <= 600 and "(60 requests per 10 min)" in next(
        ln for ln in lines if "waiting" in ln
    )
    assert run.guard_waited_s >= said - 1  # it did wait that long (simulated clock)


def test_log_lines_go_above_the_bar_on_a_terminal(tmp_path):
    """The fetch on a pseudo-terminal: the bar is drawn, and every log line starts a line of its
    own (the bar is cleared first) instead of being appended to the bar."""
    with run_simulator() as sim:
        env = {
            **os.environ,
            "IBKR_HOST": "127.0.0.1",
            "IBKR_PORT": str(sim.port),
            "NTRADER_RUNS": str(tmp_path / "runs"),
        }
        args = [
            sys.executable,
            "scripts/fetch.py",
            "symbols=[AAPL]",
            "dates.start=2024-03-04",
            "dates.end=2024-03-15",
            f"catalog.path={tmp_path / 'catalog'}",
        ]
        code, out, _ = run_on_pty(args, env, timeout=60)
        assert code == 0
    text = ANSI.sub("", out.decode(errors="replace"))
    assert "fetch:" in text and "10/10" in text  # the bar was drawn and finished
    assert "ETA " in text and "at IB's pacing" in text
    # "conId …" is logged while the bar is on the screen
    assert text.index("fetch:") < text.index("conId 265598") < text.index("10/10")
    logged = [ln for ln in text.split("\n") if " INFO " in ln]
    assert len(logged) >= 5, text[-3000:]
    for line in logged:
        shown = line.rstrip("\r").rsplit("\r", 1)[-1]  # what the terminal shows on that row
        assert re.match(r"\d\d:\d\d:\d\d INFO ", shown), repr(line)

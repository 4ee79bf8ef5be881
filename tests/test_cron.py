"""The README's crontab works as written (issue 16 §2): its lines, parsed from README.md so they
cannot drift, run the way cron runs them — ``env -i`` with cron's few variables plus the
crontab's own assignments, ``/bin/sh -c``, no terminal, started from another directory — in a
fresh copy of the checkout (the files git has, nothing else but the shared ``.venv``), with the
TWS simulator standing in for IB Gateway."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ntrader.ibkr.sim import run_simulator

from .conftest import REPO
from .test_import_csv import minute_csv

CHECKOUT = "/opt/ntrader"  # what the README's lines cd into
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def crontab() -> tuple[dict[str, str], list[str]]:
    """The README's crontab: its variable assignments and its commands (cron's ``\\%`` undone)."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Cron\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```cron\n", 1)[1].split("```", 1)[0]
    env, commands = {}, []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if m := ASSIGNMENT.match(line):
            env[m.group(1)] = m.group(2)
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a crontab line: {line!r}"
        command = fields[5]
        assert "%" not in command.replace("\\%", ""), f"a bare % (cron's newline) in {line!r}"
        commands.append(command.replace("\\%", "%"))
    return env, commands


def fresh_checkout(dest: Path) -> Path:
    """The checkout as a clone has it: every file git tracks (or would: not ignored), mtimes
    kept, plus the shared ``.venv`` and ``.tools``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for shared in (".venv", ".tools"):
        if (REPO / shared).exists():
            (dest / shared).symlink_to(REPO / shared)
    return dest


def as_cron(command: str, env: dict[str, str], home: Path) -> subprocess.CompletedProcess:
    cron_env = {"HOME": str(home), "LOGNAME": "ntrader", "SHELL": "/bin/sh"}
    cron_env["PATH"] = "/usr/bin:/bin"
    return subprocess.run(
        [
            "env",
            "-i",
            *(f"{k}={v}" for k, v in {**cron_env, **env}.items()),
            "/bin/sh",
            "-c",
            command,
        ],
        cwd=home,  # cron starts in HOME, not in the checkout
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,  # no controlling terminal
        check=False,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the checkout's files")
def test_the_readme_crontab_runs_as_cron_runs_it(tmp_path):
    env, commands = crontab()
    assert "IBKR_PORT" in env and len(commands) == 5
    assert all(c.startswith(f"cd {CHECKOUT} && make ") for c in commands)
    checkout = fresh_checkout(tmp_path / "ntrader")
    assert (checkout / "logs").is_dir() and (checkout / "reports").is_dir()
    home = tmp_path / "home"
    home.mkdir()
    today = dt.date.today().isoformat()
    incoming = checkout / "incoming" / today
    incoming.mkdir(parents=True)
    minute_csv(incoming / "AAPL.csv", "2024-01-02 09:30")
    old_run = checkout / "runs" / "backtest" / "2020-01-02_10-00-00"
    old_run.mkdir(parents=True)

    fetch, scan, check, imp, clean = (c.replace(CHECKOUT, str(checkout)) for c in commands)
    with run_simulator() as sim:
        env = {**env, "IBKR_PORT": str(sim.port), "IBKR_HOST": "127.0.0.1"}
        r = as_cron(fetch, env, home)
        log = (checkout / "logs" / "fetch.log").read_text()
        assert r.returncode == 0, log[-3000:]
        assert "Fetched " in log and "mega_caps" not in r.stderr
        symbols = {"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META"}
        assert {req.symbol for req in sim.requests} >= symbols

    r = as_cron(scan, env, home)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((checkout / "reports" / f"catalog-{today}.json").read_text())
    assert {row["bar_type"].split(".")[0] for row in report} == symbols

    r = as_cron(check, env, home)  # one session fetched: the month has gaps, exit 1 → cron mails
    assert r.returncode == 2, r.stdout + r.stderr
    assert "scripts/scan.py exited with code 1" in r.stderr and "missing sessions" in r.stdout

    r = as_cron(imp, env, home)
    log = (checkout / "logs" / "import.log").read_text()
    assert r.returncode == 0 and r.stdout == "", log[-3000:]  # nothing for cron to mail
    assert "AAPL" in log and "390" in log

    r = as_cron(clean, env, home)
    assert r.returncode == 0, r.stderr
    assert not old_run.exists()
    assert "deleted 1 run folder(s)" in (checkout / "logs" / "clean-runs.log").read_text()
    assert (checkout / "runs" / "import_csv").is_dir()  # today's runs stay
    assert not list((checkout / "runs").glob("*/multirun"))
    assert os.listdir(home) == [] or all(p.startswith(".") for p in os.listdir(home))

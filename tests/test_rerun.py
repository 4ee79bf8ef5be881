"""Verified reruns (issue 15): ``make rerun RUN=…`` says "reproduced: identical" only when the
rerun read the same files and gave the same results; a data change is named with its commits and
sessions, and the rerun reads the catalog as of the original version — or, once retention
pruned that version, refuses."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .conftest import REPO, run_make
from .test_dividends import DAILY_BACKTEST, yahoo_csv


def _rerun(run_dir: Path, runs: Path) -> subprocess.CompletedProcess:
    """``make rerun RUN=<run_dir>`` as a user types it."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(runs.parent),
        "NTRADER_RUNS": str(runs),
        "NTRADER_CACHE": os.environ["NTRADER_CACHE"],
    }
    return subprocess.run(
        ["make", "-s", "rerun", f"RUN={run_dir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _latest(runs: Path) -> dict:
    files = sorted(runs.rglob("summary.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(files[-1].read_text())


def test_rerun_identical_then_tampered_then_after_a_data_change(run_script, tmp_path):
    root, csv_path = tmp_path / "catalog", tmp_path / "AAPL.csv"
    yahoo_csv(csv_path)
    args = (f"catalog.path={root}", "symbol=AAPL", "bars=daily")
    assert run_script("import_csv", *args[:2], f"csv.path={csv_path}", args[2]).code == 0
    first = run_script("backtest", *args, *DAILY_BACKTEST[1:])
    assert first.code == 0, first.stderr
    original = Path(first.summary()["run_dir"])
    runs = tmp_path / "runs"

    same = _rerun(original, runs)
    assert same.returncode == 0, same.stderr
    assert f"rerun of {original}: reproduced: identical" in same.stdout
    assert _latest(runs)["rerun"]["verdict"] == "identical"

    # the same data but another number in the original's summary: named, exit 1
    tampered = tmp_path / "tampered"
    subprocess.run(["cp", "-r", str(original), str(tampered)], check=True)
    s = json.loads((tampered / "summary.json").read_text())
    s["result"]["pnl"] += 1.0
    (tampered / "summary.json").write_text(json.dumps(s))
    diff = _rerun(tampered, runs)
    assert diff.returncode != 0 and "exited with code 1" in diff.stderr
    assert "NOT reproduced: 1 field(s) differ" in diff.stdout and "result.pnl:" in diff.stdout
    assert _latest(runs)["rerun"]["differences"][0]["field"] == "result.pnl"

    # one bar changed by a merge import: the rerun read other data and says which commit
    lines = [
        ",".join(c for i, c in enumerate(ln.split(",")) if i != 5)
        for ln in csv_path.read_text().splitlines()
    ]
    cells = lines[30].split(",")
    cells[4] = f"{float(cells[4]) + 0.01:.2f}"
    cells[2] = f"{max(float(cells[2]), float(cells[4])):.2f}"
    one = tmp_path / "one.csv"
    one.write_text(f"{lines[0]}\n{','.join(cells)}\n")
    merged = run_script("import_csv", *args[:2], f"csv.path={one}", args[2], "mode=merge")
    assert merged.code == 0, merged.stderr
    merge_run = merged.summary()["run_id"]  # now: summary() is the latest run's
    as_of = _rerun(original, runs)
    assert as_of.returncode == 0, as_of.stderr + as_of.stdout
    out = as_of.stdout
    verdict = "on catalog version 1 (the original's): reproduced: identical"
    assert f"rerun of {original}: {verdict}" in out
    assert "the catalog changed since the original run" in out
    assert "commit v2 " in out and merge_run in out
    assert f"session {cells[0]}: 1 changed" in out  # the CSV's date of the edited row
    rerun = _latest(runs)["rerun"]
    assert rerun["verdict"] == "identical" and rerun["as_of"] == 1
    (change,) = rerun["changed_since"]
    assert change["bar_type"] == "AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"
    assert (change["bars_changed"], change["bars_added"], change["bars_removed"]) == (1, 0, 0)
    assert change["sessions"] == [{"session": cells[0], "removed": 0, "added": 0, "changed": 1}]
    assert [c["version"] for c in change["commits"]] == [2]

    # retention pruned version 1's file: the rerun reads today's data and refuses
    gc = run_make("gc", f"CATALOG={root}", "ARGS=catalog.retain_days=0", runs=runs)
    assert gc.returncode == 0, gc.stderr
    assert "deleted 1 retained file(s)" in gc.stdout
    changed = _rerun(original, runs)
    assert changed.returncode != 0
    out = changed.stdout
    assert "the data changed since the original run: NOT a reproduction" in out
    assert "AAPL.NASDAQ-1-DAY-LAST-EXTERNAL: files 1 gone, 1 new" in out
    assert "commit v2 " in out and merge_run in out
    assert "cannot read catalog version 1" in out and "pruned" in out
    assert _latest(runs)["status"] == "incomplete"

"""``make clean-runs DAYS=… RUNS=…`` (issue 16 §2): only run folders older than DAYS go — by the
start time their names state, so a local runs root and one on S3 behave the same — and
``RUNS=`` is honoured."""

from __future__ import annotations

import datetime as dt

from ntrader.runs.clean import clean_runs

from .conftest import run_make
from .s3_fixtures import s3 as s3

NOW = dt.datetime.now()
OLD, NEW = ((NOW - dt.timedelta(days=d)).strftime("%Y-%m-%d_%H-%M-%S") for d in (30, 1))
KEPT = ["backtest/latest.json", "backtest/notes/x.txt", f"fetch/{NEW}_nightly/summary.json"]
GONE = [f"backtest/{OLD}/summary.json", f"backtest/multirun/{OLD}_sw/0/summary.json"]


def test_clean_runs_locally_through_make(tmp_path):
    root = tmp_path / "my runs"
    for rel in KEPT + GONE + [f"backtest/multirun/{NEW}/0/summary.json"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}")
    p = run_make("clean-runs", "DAYS=7", f"RUNS={root}", runs=tmp_path / "elsewhere")
    assert p.returncode == 0, p.stderr
    assert f"deleted 2 run folder(s) started more than 7 day(s) ago under {root}" in p.stdout
    assert all((root / rel).exists() for rel in KEPT)
    assert not any((root / rel).exists() for rel in GONE)


def test_clean_runs_on_s3(s3):
    bucket = s3.fresh_bucket()
    fs = s3.fs()
    for rel in KEPT + GONE:
        fs.pipe(f"{bucket}/runs/{rel}", b"{}")
    url = f"s3://{bucket}/runs"
    gone = clean_runs(url, 7, now=NOW)
    assert sorted(p.rsplit("/runs/", 1)[1] for p in gone) == [
        f"backtest/{OLD}",
        f"backtest/multirun/{OLD}_sw",
    ]
    fs.invalidate_cache()
    left = sorted(p.split("/runs/", 1)[1] for p in fs.find(f"{bucket}/runs"))
    assert left == sorted(KEPT)
    assert clean_runs(url, 400, now=NOW) == []

"""Every run folder has ``manifest.json`` (issue 15): the code, versions and config it ran on
and, for a backtest, the files it read with their content hashes — stable across runs, cached,
and different after a one-bar change."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nautilus_trader
import pyarrow as pa

from ntrader.catalog.manifest import hash_file

from .test_dividends import DAILY_BACKTEST, yahoo_csv

BT = "AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"


def _manifest(summary: dict) -> dict:
    return json.loads((Path(summary["run_dir"]) / "manifest.json").read_text())


def _backtest(run_script, root: Path, env: dict):
    r = run_script("backtest", f"catalog.path={root}", "symbol=AAPL", *DAILY_BACKTEST, env=env)
    assert r.code == 0, r.stderr
    return _manifest(r.summary())


def test_backtest_manifest_is_stable_cached_and_names_a_one_bar_change(run_script, tmp_path):
    root, csv_path = tmp_path / "catalog", tmp_path / "AAPL.csv"
    yahoo_csv(csv_path)
    imp = (
        "import_csv",
        f"catalog.path={root}",
        f"csv.path={csv_path}",
        "symbol=AAPL",
        "bars=daily",
    )
    assert run_script(*imp).code == 0
    env = {"NTRADER_CACHE": str(tmp_path / "cache")}
    first = _backtest(run_script, root, env)
    second = _backtest(run_script, root, env)

    # the code and what it ran with
    code = first["code"]
    assert code["ntrader"] == "0.1.0"
    assert re.fullmatch(r"[0-9a-f]{40}", code["git_commit"]) and isinstance(code["git_dirty"], bool)
    assert first["versions"]["nautilus_trader"] == nautilus_trader.__version__
    assert first["versions"]["pyarrow"] == pa.__version__
    assert set(first["versions"]) >= {"python", "pandas", "numpy", "ib_async"}
    assert re.fullmatch(r"[0-9a-f]{32}", first["config"]["xxh3_128"])
    assert first["config"] == second["config"] and first["seeds"] == {}

    # the data: every pinned file, hashed once, then from the cache
    data = first["data"]["bar_types"][BT]
    (f,) = data["files"]
    live = next((root / "data" / "bar" / BT).glob("*.parquet"))
    assert f["name"] == live.name and f["bytes"] == live.stat().st_size
    assert f["xxh3_128"] == hash_file(live) and f["rows"] == 124 == data["rows_read"]
    assert data["instrument"]["id"] == "AAPL.NASDAQ" and data["adjustment"] == {"view": "splits"}
    assert first["data"]["hash_cache"]["misses"] == 1 and first["data"]["hash_cache"]["hits"] == 0
    assert second["data"]["hash_cache"]["hits"] == 1 and second["data"]["hash_cache"]["misses"] == 0
    assert second["data"]["bar_types"] == first["data"]["bar_types"]

    # one bar changed (merge import of one row): another file, another hash
    with open(csv_path) as fh:
        rows = list(csv.reader(fh))
    header, row = rows[0], rows[40]
    row[4] = f"{float(row[4]) + 0.01:.2f}"  # Close
    row[2] = f"{max(float(row[2]), float(row[4])):.2f}"  # High holds it
    one = tmp_path / "one.csv"
    one.write_text(",".join(header[:5] + header[6:]) + "\n" + ",".join(row[:5] + row[6:]) + "\n")
    assert run_script(*imp[:2], f"csv.path={one}", *imp[3:], "mode=merge").code == 0
    third = _backtest(run_script, root, env)
    changed = third["data"]["bar_types"][BT]
    assert [x["xxh3_128"] for x in changed["files"]] != [f["xxh3_128"]]
    assert changed["instrument"] == data["instrument"]
    assert third["config"] == first["config"]


def test_every_run_folder_has_a_manifest_even_a_failed_one(run_script, tmp_path):
    r = run_script("scan", f"catalog.path={tmp_path / 'none'}", "symbol=AAPL")
    m = _manifest(r.summary())
    assert m["run_id"].startswith("scan/") and "data" not in m
    assert m["code"]["ntrader"] == "0.1.0" and m["versions"]["python"].startswith("3.12")
    bad = run_script(
        "backtest", f"catalog.path={tmp_path / 'none'}", "symbol=AAPL", "ibkr.auto_fetch=false"
    )
    assert bad.code == 1
    assert "data" not in _manifest(bad.summary())  # nothing read, nothing claimed

"""Catalog versions (issue 15): every commit gets the next version and a kept log entry naming
the files added and removed and the run that wrote it; ``make log`` lists a bar type's history
and a backtest's manifest names the version it read."""

from __future__ import annotations

import json
from pathlib import Path

from nautilus_trader.persistence.catalog import ParquetDataCatalog

from .test_dividends import DAILY_BACKTEST, yahoo_csv

BT = "AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"


def test_the_log_of_import_merge_overwrite_and_the_manifest_version(run_script, tmp_path):
    root, csv_path = tmp_path / "catalog", tmp_path / "AAPL.csv"
    yahoo_csv(csv_path)
    # the edited files below without the Adj Close column (it would no longer match Close)
    lines = [
        ",".join(x for i, x in enumerate(ln.split(",")) if i != 5)
        for ln in csv_path.read_text().splitlines()
    ]
    changed = tmp_path / "changed.csv"  # session 40 one cent higher (close and high)
    cells = lines[40].split(",")
    cells[4] = f"{float(cells[4]) + 0.01:.2f}"
    cells[2] = f"{max(float(cells[2]), float(cells[4])):.2f}"
    changed.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
    head = tmp_path / "head.csv"  # the first 30 sessions, session 10 two cents higher
    cells = lines[10].split(",")
    cells[4] = f"{float(cells[4]) + 0.02:.2f}"
    cells[2] = f"{max(float(cells[2]), float(cells[4])):.2f}"
    head.write_text("\n".join([*lines[:10], ",".join(cells), *lines[11:31]]) + "\n")

    def imp(path: Path, *extra: str):
        r = run_script(
            "import_csv",
            f"catalog.path={root}",
            f"csv.path={path}",
            "symbol=AAPL",
            "bars=daily",
            *extra,
        )
        assert r.code == 0, r.stderr
        return r.summary()["run_id"]

    runs = [imp(csv_path), imp(changed, "mode=merge"), imp(head, "mode=overwrite")]
    r = run_script(
        "scan", f"catalog.path={root}", "symbol=AAPL", "bars=daily", "log=true", "format=json"
    )
    assert r.code == 0, r.stderr
    log = json.loads(r.stdout)
    commits = log["commits"]
    assert [c["version"] for c in commits] == [1, 2, 3] and log["catalog_version"] == 3
    assert [c["run_id"] for c in commits] == runs
    assert {c["script"] for c in commits} == {"import_csv"}
    assert commits[0]["removed"] == [] and len(commits[0]["added"]) == 1
    assert commits[1]["removed"] == commits[0]["added"]  # merge: the file rewritten
    assert commits[2]["removed"] == commits[1]["added"]  # overwrite of the first 30 sessions
    live = sorted(p.name for p in (root / "data" / "bar" / BT).glob("*.parquet"))
    assert sorted(commits[2]["added"]) == [n for n in live if n in commits[2]["added"]]
    table = run_script("scan", f"catalog.path={root}", "symbol=AAPL", "bars=daily", "log=true")
    assert f"{BT}: 3 commit(s), catalog version 3" in table.stdout
    assert "import_csv/" in table.stdout

    # plain Nautilus readers see the bars only; the log lives outside data/
    bars = ParquetDataCatalog(str(root)).bars(bar_types=[BT])
    assert len(bars) == 124 and not list((root / "data").rglob("*.json"))

    bt = run_script("backtest", f"catalog.path={root}", "symbol=AAPL", *DAILY_BACKTEST)
    assert bt.code == 0, bt.stderr
    manifest = json.loads((Path(bt.summary()["run_dir"]) / "manifest.json").read_text())
    assert manifest["data"]["catalog_version"] == 3
    assert manifest["data"]["bar_types"][BT]["last_commit"] == 3

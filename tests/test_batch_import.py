"""`make import CSV='dir/*.csv' SYMBOL={stem}`: many files in one process, end to end through real
`make` subprocesses into a real catalog on disk. Each file lands under its own symbol; a bad file
is reported while the good ones are imported (exit non-zero); a file name that gives no valid
symbol is refused naming it, and nothing is written outside the catalog."""

from __future__ import annotations

import json
from pathlib import Path

from ntrader.catalog.catalog import Catalog

from .conftest import tree_snapshot
from .test_import_csv import minute_csv
from .test_make_vars import make

BAR = "-1-MINUTE-LAST-EXTERNAL"


def run_import(tmp: Path, csv: str, symbol: str, **more: str):
    return make(
        "import",
        CSV=csv,
        SYMBOL=symbol,
        CATALOG=str(tmp / "catalog"),
        RUNS=str(tmp / "runs"),
        **more,
    )


def summaries(tmp: Path) -> list[dict]:
    paths = sorted((tmp / "runs" / "import_csv").glob("*/summary.json"))
    return [json.loads(p.read_text()) for p in paths]


def rows_of(tmp: Path, bar_type: str) -> int:
    return len(Catalog(tmp / "catalog").read(bar_type))


def test_a_glob_lands_each_file_under_its_symbol(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    minute_csv(incoming / "AAPL.csv", start="2024-06-03 09:30", n=390, seed=1)
    minute_csv(incoming / "msft.csv", start="2024-06-03 09:30", n=200, seed=2)  # lower case
    minute_csv(incoming / "BRK.B.csv", start="2024-06-03 09:30", n=100, seed=3)
    (incoming / "notes.txt").write_text("not matched by *.csv")
    p = run_import(tmp_path, str(incoming / "*.csv"), "{stem}")
    assert p.returncode == 0, p.stdout + p.stderr
    expected = {"AAPL.NASDAQ": 390, "MSFT.NASDAQ": 200, "BRK.B.NASDAQ": 100}
    for iid, n in expected.items():
        assert rows_of(tmp_path, iid + BAR) == n, iid
    assert sorted(Catalog(tmp_path / "catalog").bar_types()) == sorted(i + BAR for i in expected)
    # one line per file, then the total
    lines = p.stdout.splitlines()
    for name, iid in [("AAPL.csv", "AAPL.NASDAQ"), ("msft.csv", "MSFT.NASDAQ")]:
        line = next(x for x in lines if name in x)
        assert line.startswith("ok") and iid + BAR in line, line
    assert lines[-1].startswith("total: 3 files, 3 imported, 0 failed · rows read 690 · added 690")
    (summary,) = summaries(tmp_path)
    assert summary["status"] == "ok" and summary["exit_code"] == 0
    files = {Path(f["csv"]).name: f for f in summary["import"]["files"]}
    assert set(files) == {"AAPL.csv", "msft.csv", "BRK.B.csv"}
    assert files["msft.csv"]["symbol"] == "MSFT.NASDAQ"
    assert files["msft.csv"]["rows_read"] == files["msft.csv"]["rows_added"] == 200
    assert all(f["status"] == "ok" and f["rows_skipped"] == 0 for f in files.values())
    assert summary["counts"]["files_ok"] == 3 and summary["counts"]["rows_added"] == 690

    # the same command again adds nothing: every row is skipped, still exit 0
    before = tree_snapshot(tmp_path / "catalog" / "data")
    again = run_import(tmp_path, str(incoming / "*.csv"), "{stem}")
    assert again.returncode == 0, again.stderr
    assert "added 0 · replaced 0 · removed 0 · skipped 690" in again.stdout
    assert tree_snapshot(tmp_path / "catalog" / "data") == before


def test_a_bad_file_is_reported_and_the_good_ones_are_imported(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    minute_csv(incoming / "AAPL.csv", n=390, seed=1)
    minute_csv(incoming / "MSFT.csv", n=390, seed=2)
    bad = minute_csv(incoming / "NVDA.csv", n=390, seed=3)
    bad.loc[4, "High"] = 1.0  # high < low on file line 6
    bad.to_csv(incoming / "NVDA.csv", index=False, float_format="%.2f")
    p = run_import(tmp_path, str(incoming / "*.csv"), "{stem}")
    assert p.returncode == 2, p.stdout + p.stderr
    assert "scripts/import_csv.py exited with code 2" in p.stderr
    assert rows_of(tmp_path, "AAPL.NASDAQ" + BAR) == 390
    assert rows_of(tmp_path, "MSFT.NASDAQ" + BAR) == 390
    assert "NVDA.NASDAQ" + BAR not in Catalog(tmp_path / "catalog").bar_types()  # atomic per file
    nvda = next(x for x in p.stdout.splitlines() if x.startswith("failed"))
    assert "NVDA.csv" in nvda
    assert "line 6: high < low" in p.stdout
    assert "total: 3 files, 2 imported, 1 failed" in p.stdout
    (summary,) = summaries(tmp_path)
    assert summary["status"] == "partial" and summary["exit_code"] == 2
    assert "1 of 3 files failed" in summary["error"]["message"]
    files = {Path(f["csv"]).name: f for f in summary["import"]["files"]}
    assert files["NVDA.csv"]["status"] == "failed" and files["NVDA.csv"]["rows_added"] == 0
    assert "high < low" in files["NVDA.csv"]["error"]["message"]
    assert files["AAPL.csv"]["status"] == files["MSFT.csv"]["status"] == "ok"


def test_hostile_file_names_are_refused_naming_them(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    minute_csv(incoming / "AAPL.csv", n=30, seed=1)
    hostile = ["A..B.csv", "a;touch pwned;.csv", "$(touch pwned).csv", "日本.csv", "-rf.csv"]
    for name in hostile:
        minute_csv(incoming / name, n=30, seed=2)
    outside = tree_snapshot(tmp_path / "incoming")
    p = run_import(tmp_path, str(incoming / "*.csv"), "{stem}")
    assert p.returncode == 2, p.stdout + p.stderr
    for name in hostile:
        assert f"{incoming / name}': the file name gives no valid symbol" in p.stdout, name
    (summary,) = summaries(tmp_path)
    failed = {Path(f["csv"]).name for f in summary["import"]["files"] if f["status"] == "failed"}
    assert failed == set(hostile)
    assert Catalog(tmp_path / "catalog").bar_types() == ["AAPL.NASDAQ" + BAR]
    # nothing ran, nothing was written outside the catalog and the run folder
    assert tree_snapshot(tmp_path / "incoming") == outside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog", "incoming", "runs"]
    assert not list(tmp_path.rglob("pwned"))
    catalog_dirs = {p.name for p in (tmp_path / "catalog" / "data" / "bar").iterdir()}
    assert catalog_dirs == {"AAPL.NASDAQ" + BAR}


def test_a_glob_matching_nothing_is_exit_2(tmp_path):
    (tmp_path / "incoming").mkdir()
    pattern = str(tmp_path / "incoming" / "*.csv")
    p = run_import(tmp_path, pattern, "{stem}")
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"CSV='{pattern}' matches no file" in p.stderr
    assert "scripts/import_csv.py exited with code 2" in p.stderr
    assert not (tmp_path / "catalog").exists()
    bad = run_import(tmp_path, pattern, "{name}.{stem}")
    assert bad.returncode == 2 and "SYMBOL" in bad.stderr
    minute_csv(tmp_path / "incoming" / "A..B.csv", n=30)  # only a refused name: no catalog made
    refused = run_import(tmp_path, pattern, "{stem}")
    assert refused.returncode == 2 and "A..B.csv': the file name gives no valid" in refused.stdout
    assert not (tmp_path / "catalog").exists()


def test_one_symbol_for_many_files_and_a_symbol_pattern(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    minute_csv(incoming / "nvda-2024-06-03.csv", start="2024-06-03 09:30", n=390, seed=1)
    minute_csv(incoming / "nvda-2024-06-04.csv", start="2024-06-04 09:30", n=390, seed=2)
    p = run_import(tmp_path, str(incoming / "nvda-*.csv"), "NVDA")
    assert p.returncode == 0, p.stdout + p.stderr
    assert rows_of(tmp_path, "NVDA.NASDAQ" + BAR) == 780
    dated = tmp_path / "dated"
    dated.mkdir()
    minute_csv(dated / "AMD_2024-06-03.csv", n=390, seed=3)
    minute_csv(dated / "IBM_2024-06-03.csv", n=390, seed=4)
    args = "'csv.symbol_pattern=\"(.+?)_.*\"'"  # conf/import_csv.yaml's example, as pasted
    p = run_import(tmp_path, str(dated / "*_2024-06-03.csv"), "{stem}", ARGS=args)
    assert p.returncode == 0, p.stdout + p.stderr
    assert rows_of(tmp_path, "AMD.NASDAQ" + BAR) == 390
    assert rows_of(tmp_path, "IBM.NYSE" + BAR) == 390  # conf/instruments: IBM trades on NYSE

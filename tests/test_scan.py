"""`scripts/scan.py` run as a user runs it: catalog listing and `make check` reports."""

from __future__ import annotations

import csv
import ctypes
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.sessions import expected_bar_closes, sessions_between

from .conftest import REPO, tree_snapshot

MINUTE = 60_000_000_000


def calendar_frame(start: str, end: str, drop=lambda ts: np.zeros(len(ts), bool)) -> BarFrame:
    """RTH 1-minute bars for every XNYS session in [start, end], minus ``drop(ts)``."""
    s = sessions_between("XNYS", dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    ts = expected_bar_closes(s, MINUTE)
    ts = ts[~drop(ts)]
    px = np.round(100 + np.sin(np.arange(len(ts)) / 50.0), 2)
    return BarFrame(ts, px, px + 0.02, px - 0.02, px, np.full(len(ts), 100.0), 2, 0)


def local(ts: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ts, tz="UTC").tz_convert("America/New_York")


def write(catalog: Catalog, symbol: str, f: BarFrame, spec: str = "1-MINUTE-LAST") -> None:
    iid = resolve_instrument_id(symbol)
    catalog.write_bars(bar_type_for(iid, spec), f, instrument=make_equity(iid, 2))


@pytest.fixture
def filled(catalog):
    """AAPL: 2024-05-20..2024-06-14 minus session 2024-06-05 and 10:00-10:29 on 2024-06-10."""

    def drop(ts):
        t = local(ts)
        day = t.date
        gone = day == dt.date(2024, 6, 5)
        gone |= (day == dt.date(2024, 6, 10)) & (t.hour == 10) & (t.minute < 30) & (t.minute >= 1)
        gone |= (day == dt.date(2024, 6, 10)) & (t.hour == 10) & (t.minute == 30)
        return np.asarray(gone)

    write(catalog, "AAPL", calendar_frame("2024-05-20", "2024-06-14", drop))
    write(catalog, "MSFT", calendar_frame("2024-05-29", "2024-06-04"))
    return catalog


def test_scan_lists_every_bar_type_in_each_format(filled, run_script):
    root = f"catalog.path={filled.root}"
    table = run_script("scan", root)
    assert table.code == 0, table.stderr
    assert "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL" in table.stdout
    assert "MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL" in table.stdout
    js = run_script("scan", root, "format=json")
    rows = json.loads(js.stdout)
    by = {r["bar_type"]: r for r in rows}
    aapl = by["AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"]
    truth = filled.read("AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL")
    assert aapl["rows"] == len(truth)
    assert (aapl["first_ns"], aapl["last_ns"]) == (truth.first_ns, truth.last_ns)
    assert aapl["first"] == "2024-05-20T09:31:00-04:00"
    assert aapl["instrument_id"] == "AAPL.NASDAQ" and aapl["files"] == 1 and aapl["bytes"] > 0
    c = run_script("scan", root, "format=csv")
    parsed = list(csv.DictReader(io.StringIO(c.stdout)))
    assert [r["bar_type"] for r in parsed] == sorted(by)
    assert int(parsed[0]["rows"]) == aapl["rows"]
    assert js.summary()["counts"]["bar_types"] == 2


def test_check_reports_real_gaps_with_fill_commands(filled, run_script):
    r = run_script("scan", f"catalog.path={filled.root}", "symbol=AAPL", "format=json")
    assert r.code == 0, r.stderr
    rep = json.loads(r.stdout)
    gaps = rep["gaps"]
    assert [(g["kind"], g["first"][:16], g["last"][:16], g["size"]) for g in gaps] == [
        ("missing sessions", "2024-06-05", "2024-06-05", "1 session"),
        ("missing bars", "2024-06-10T10:00", "2024-06-10T10:30", "30 bars"),
    ]
    assert gaps[0]["command"] == (  # complete for where it was printed: catalog and runs root
        "make fetch SYMBOLS=AAPL.NASDAQ START=2024-06-05 END=2024-06-05 BAR=1-MINUTE-LAST"
        f" CATALOG={filled.root} RUNS={r.runs}"
    )
    assert rep["sessions"] == {"expected": 19, "present": 18, "missing": 1}  # 05-27 holiday
    assert rep["health"] == []
    table = run_script("scan", f"catalog.path={filled.root}", "symbol=AAPL")
    assert "missing sessions" in table.stdout and "make fetch SYMBOLS=AAPL.NASDAQ" in table.stdout


def test_fail_on_gaps_turns_gaps_into_exit_1(filled, run_script):
    root = f"catalog.path={filled.root}"
    r = run_script("scan", root, "symbol=AAPL", "check.fail_on_gaps=true")
    assert r.code == 1 and "2 gap(s) in AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL" in r.stderr
    assert "make fetch SYMBOLS=AAPL.NASDAQ" in r.stdout  # the report is printed all the same
    ok = run_script("scan", root, "symbol=MSFT", "check.fail_on_gaps=true")
    assert ok.code == 0


def test_no_false_gap_over_a_weekend(filled, run_script):
    """The earlier implementation reported a gap 2024-05-31 -> 2024-06-01 (a Saturday)."""
    r = run_script("scan", f"catalog.path={filled.root}", "symbol=MSFT", "format=json")
    rep = json.loads(r.stdout)
    assert rep["gaps"] == [] and rep["sessions"]["missing"] == 0


def test_check_range_before_the_data_lists_leading_sessions(filled, run_script):
    r = run_script(
        "scan",
        f"catalog.path={filled.root}",
        "symbol=MSFT",
        "start=2024-05-24",
        "end=2024-06-04",
        "format=json",
    )
    rep = json.loads(r.stdout)
    # 2024-05-27 is Memorial Day: the missing range is Fri 05-24 and Tue 05-28, one range.
    assert [(g["first"], g["last"], g["size"]) for g in rep["gaps"]] == [
        ("2024-05-24", "2024-05-28", "2 sessions")
    ]


def test_check_unknown_instrument_is_a_data_error(filled, run_script):
    r = run_script("scan", f"catalog.path={filled.root}", "symbol=NVDA")
    assert r.code == 1
    assert "no 1-MINUTE-LAST bars for NVDA.NASDAQ" in r.stderr
    assert "make import CSV=" in r.stderr and "make fetch SYMBOLS=NVDA.NASDAQ" in r.stderr
    s = r.summary()
    assert s["exit_code"] == 1 and s["status"] == "failed" and "NVDA" in s["error"]["message"]


def test_check_health_findings(catalog, run_script):
    f = calendar_frame("2024-06-03", "2024-06-04")
    close = f.close.copy()
    close[100] = close[99] * 1.5  # a jump
    high = f.high.copy()
    high[200] = f.low[200] - 1  # high < low
    f = BarFrame(f.ts_event, f.open, np.maximum(high, 0), f.low, close, f.volume, 2, 0)
    write(
        catalog,
        "AAPL",
        BarFrame(
            f.ts_event,
            f.open,
            np.where(np.arange(len(f)) == 100, close + 1, f.high),
            f.low,
            close,
            f.volume,
            2,
            0,
        ),
    )
    r = run_script("scan", f"catalog.path={catalog.root}", "symbol=AAPL", "format=json")
    kinds = {h["kind"]: h["count"] for h in json.loads(r.stdout)["health"]}
    assert kinds.get("jump", 0) >= 1


def test_empty_catalog_and_bad_format(catalog, run_script):
    r = run_script("scan", f"catalog.path={catalog.root}")
    assert r.code == 0 and "holds no bars yet" in r.stdout
    bad = run_script("scan", f"catalog.path={catalog.root}", "format=xml")
    assert bad.code == 2 and "unknown format 'xml'" in bad.stderr


def test_corrupt_file_exits_4_and_is_left_in_place_until_repaired(filled, run_script):
    f = filled.files("MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL")[0].path
    f.write_bytes(b"garbage")
    before = tree_snapshot(filled.root)
    for args in ((), ("symbol=MSFT",)):
        r = run_script("scan", f"catalog.path={filled.root}", *args)
        assert r.code == 4, r.stderr
        assert (
            f"corrupt Parquet file data/bar/MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL/{f.name}" in r.stderr
        )
        assert "left in place" in r.stderr and "make scan ARGS=repair=true" in r.stderr
    assert tree_snapshot(filled.root) == before and not (filled.root / ".corrupt").exists()
    moved = Catalog(filled.root).quarantine_corrupt()  # what `make scan ARGS=repair=true` runs
    assert [m.path for m in moved] == [str(f)] and Path(moved[0].moved_to).exists()
    again = run_script("scan", f"catalog.path={filled.root}", "format=json")
    assert again.code == 0
    assert [x["bar_type"] for x in json.loads(again.stdout) if x["rows"]] == [
        "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
    ]


# ------------------------------------------------------------------ another user's files
OTHER_UID = 1000


def _as_another_user() -> None:
    """In the child: a root that obeys permission bits (no CAP_DAC_OVERRIDE/_READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(tmp_path: Path, *cmd: str) -> subprocess.CompletedProcess:
    """``cmd`` (a script and its overrides, or ``-c code``) as a user that only has the
    permissions the files give: tests run as root, so root drops its override capabilities."""
    env = {**os.environ, "NTRADER_RUNS": str(tmp_path / "runs")}
    env.pop("NAUTILUS_PATH", None)
    pre = _as_another_user if os.geteuid() == 0 else None
    return subprocess.run(
        [sys.executable, *cmd],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=pre,
        timeout=300,
    )


def _owned_by_another_user(path: Path, mode: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, OTHER_UID, OTHER_UID)
    os.chmod(path, mode)


def test_another_users_unreadable_file_is_reported_and_never_moved(filled, tmp_path):
    f = filled.files("MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL")[0].path
    _owned_by_another_user(f, 0o600)
    before = tree_snapshot(filled.root)
    scan = str(REPO / "scripts" / "scan.py")
    load = (
        "import sys\nfrom ntrader.catalog import Catalog\n"
        "from ntrader.errors import exit_code_for\n"
        "try:\n"
        f"    Catalog({str(filled.root)!r}).read_bars('MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL')\n"
        "except Exception as e:\n"
        "    print(f'{e} | {e.hint}', file=sys.stderr); sys.exit(exit_code_for(e))"
    )
    for cmd in (
        (scan, f"catalog.path={filled.root}"),
        (scan, f"catalog.path={filled.root}", "symbol=MSFT"),
        ("-c", load),
    ):
        r = run_unprivileged(tmp_path, *cmd)
        assert r.returncode == 4, r.stderr[-2000:]
        assert f"cannot read catalog file {f}" in r.stderr and "Permission denied" in r.stderr
        assert "not readable by this user: check its owner/permissions" in r.stderr
        assert "moved" not in r.stderr
    assert tree_snapshot(filled.root) == before and not (filled.root / ".corrupt").exists()


def test_a_read_only_catalog_reads_and_refuses_writes_clearly(filled, tmp_path):
    from .test_import_csv import minute_csv

    for p in [filled.root, *filled.root.rglob("*")]:
        _owned_by_another_user(p, 0o755 if p.is_dir() else 0o644)
    before = tree_snapshot(filled.root)
    scan = run_unprivileged(
        tmp_path, str(REPO / "scripts" / "scan.py"), f"catalog.path={filled.root}", "format=json"
    )
    assert scan.returncode == 0, scan.stderr[-2000:]
    assert {x["bar_type"] for x in json.loads(scan.stdout)} >= {
        "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
    }
    minute_csv(tmp_path / "x.csv", "2024-06-20 09:30")
    imp = run_unprivileged(
        tmp_path,
        str(REPO / "scripts" / "import_csv.py"),
        f"csv.path={tmp_path / 'x.csv'}",
        "symbol=AAPL",
        f"catalog.path={filled.root}",
    )
    assert imp.returncode == 4, imp.stderr[-2000:]
    assert f"catalog {filled.root} is not writable by this user (Permission denied" in imp.stderr
    assert "ask the catalog's owner for write permission" in imp.stderr
    assert tree_snapshot(filled.root) == before


def test_a_catalog_path_that_is_a_file_is_an_input_error(tmp_path, run_script):
    f = tmp_path / "catalog.txt"
    f.write_text("not a catalog")
    for script, args in (("scan", ()), ("import_csv", (f"csv.path={f}", "symbol=AAPL"))):
        r = run_script(script, f"catalog.path={f}", *args)
        assert r.code == 2, r.stderr
        assert f"CATALOG={f} is a file, not a directory" in r.stderr

"""`scripts/scan.py` run as a user runs it: catalog listing and `make check` reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pytest

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.sessions import expected_bar_closes, sessions_between

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
    assert gaps[0]["command"] == (
        "make fetch SYMBOLS=AAPL.NASDAQ START=2024-06-05 END=2024-06-05 BAR=1-MINUTE-LAST"
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


def test_corrupt_file_exits_4_and_is_quarantined(filled, run_script):
    f = filled.files("MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL")[0].path
    f.write_bytes(b"garbage")
    r = run_script("scan", f"catalog.path={filled.root}")
    assert r.code == 4
    assert "moved to" in r.stderr and ".corrupt" in r.stderr
    assert (filled.root / ".corrupt").exists() and not f.exists()
    again = run_script("scan", f"catalog.path={filled.root}", "format=json")
    assert again.code == 0
    assert [x["bar_type"] for x in json.loads(again.stdout) if x["rows"]] == [
        "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
    ]

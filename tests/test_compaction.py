"""Compaction on a real catalog: many daily appends merged into one file per period.

The same bars before and after (``Catalog.read``, ``read_bars``, ranges, a plain Nautilus
``ParquetDataCatalog``, the Arrow tables with their metadata), fewer files, idempotent, the
automatic threshold of writes, periods, a writer SIGKILLed at every commit point, a reader that
listed before the commit, S3, and ``make compact``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.compaction import period_of, plan_groups
from ntrader.errors import DataError, InputError
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id

from .conftest import MINUTE, REPO, T0, frame, tree_snapshot
from .s3_fixtures import s3 as s3
from .test_make_vars import make

DAY = 1440  # minutes
BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
IID = resolve_instrument_id("AAPL")
COLS = ("ts_event", "open", "high", "low", "close", "volume")


def day(d: int, precision: int = 2, size_precision: int = 0) -> BarFrame:
    """One RTH-like session of 390 bars, ``d`` days after 2024-01-02 (negative: before)."""
    f = frame(range(d * DAY, d * DAY + 390), price=100.0 + (d % 11))
    if size_precision:
        f = BarFrame(*(getattr(f, c) for c in COLS), precision, size_precision)
    return f


def appends(c: Catalog, days, bt: str = BT, iid=IID) -> None:
    """One ``write_bars`` per day (merge), as the daily cron does."""
    for d in days:
        c.write_bars(bt, day(d), instrument=make_equity(iid, 2))


def state(c: Catalog, bt: str = BT, plain: bool = True) -> tuple:
    """All a reader sees of ``bt``: the BarFrame, the Bars (str), a plain Nautilus read."""
    f = c.read(bt)
    bars = [str(b) for b in c.read_bars(bt)]
    naut = [str(b) for b in ParquetDataCatalog(str(c.root)).bars([bt])] if plain else []
    cols = tuple(getattr(f, k).tolist() for k in COLS)
    return cols, (f.price_precision, f.size_precision), bars, naut


def assert_disjoint_and_ordered(c: Catalog, bt: str = BT) -> None:
    files = c.files(bt)
    for a, b in itertools.pairwise(files):
        assert a.last_ns < b.first_ns, (a.path.name, b.path.name)


def months_of(days) -> int:
    return len({period_of(T0 + d * DAY * MINUTE, "month") for d in days})


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    """An existing, empty catalog that never compacts by itself; compacts by month."""
    (tmp_path / "catalog").mkdir()
    return Catalog(tmp_path / "catalog", compact_threshold=0, compact_period="month")


# ------------------------------------------------------------------ content and idempotence
def test_daily_appends_compacted_read_identically_from_fewer_files(cat):
    days = range(0, 75)  # 2024-01-02 .. 2024-03-16: three months
    appends(cat, days)
    files = cat.files(BT)
    assert len(files) == 75
    before = state(cat)
    raw = pa.concat_tables([pq.read_table(f.path) for f in files])
    ranges = [(T0 + 5 * DAY * MINUTE, T0 + 40 * DAY * MINUTE), (None, T0 + 3 * MINUTE)]
    ranged = [[str(b) for b in cat.read_bars(BT, a, b)] for a, b in ranges]

    result = cat.compact(period="month")

    (r,) = result.bar_types
    assert (r.files_before, r.files_after, r.groups_merged) == (75, 3, 3)
    assert r.rows == 75 * 390 and r.bytes_before > r.bytes_after > 0
    assert len(cat.files(BT)) == 3 == months_of(days)
    assert state(cat) == before
    assert [[str(b) for b in cat.read_bars(BT, a, b)] for a, b in ranges] == ranged
    merged = pa.concat_tables([pq.read_table(f.path) for f in cat.files(BT)])
    assert merged.equals(raw) and merged.schema.equals(raw.schema, check_metadata=True)
    assert_disjoint_and_ordered(cat)
    d = result.as_dict()
    assert d["period"] == "month" and d["bar_types"][0]["files_after"] == 3
    assert result.counts() == {"bar_types": 1, "files_before": 75, "files_after": 3,
                               "groups_merged": 3}  # fmt: skip
    assert "75 -> 3 file(s)" in result.render()
    # The merged files went to the retained history, like any commit's removed files.
    assert len(list((cat.root / ".ntrader" / "history" / BT).glob("*.parquet"))) == 75


def test_a_second_compaction_commits_nothing(cat):
    appends(cat, range(0, 40))
    cat.compact()
    tree = tree_snapshot(cat.root / "data")
    commits = len(list((cat.root / ".ntrader" / "history" / BT / "commits").iterdir()))
    again = cat.compact()
    assert again.groups_merged == 0 and again.files_before == again.files_after == 2
    assert "already compact" in again.render()
    assert tree_snapshot(cat.root / "data") == tree
    assert len(list((cat.root / ".ntrader" / "history" / BT / "commits").iterdir())) == commits


def test_periods_month_year_all(cat):
    days = range(-45, 45)  # 2023-11-18 .. 2024-02-15
    appends(cat, days)
    before = state(cat)
    assert cat.compact(period="month").files_after == months_of(days) == 4
    assert state(cat) == before
    assert cat.compact(period="year").files_after == 2  # 2023, 2024
    assert state(cat) == before
    assert cat.compact(period="all").files_after == 1
    assert state(cat) == before
    with pytest.raises(InputError, match="unknown compaction period"):
        cat.compact(period="week")


def test_groups_are_runs_of_consecutive_files_of_one_schema(cat):
    """A file crossing a month boundary stays in the month of its first bar; files of another
    size precision are not merged with their neighbours (read_bars must not change)."""
    appends(cat, [*range(0, 20), *range(32, 40)])
    cat.write_bars(BT, frame(range(28 * DAY, 31 * DAY + 390)))  # Jan 30 .. Feb 2, one file
    cat.write_bars(BT, day(45, size_precision=1))  # Feb 16: volume with 1 decimal
    appends(cat, range(46, 50))
    before = state(cat, plain=False)  # Nautilus refuses files of one bar type whose size
    # precisions differ ("conflicting metadata"), compacted or not
    groups = plan_groups(cat.files(BT), "month")
    assert [len(g) for g in groups] == [21, 13]  # Jan: 20 + the crossing file; Feb: 8 + 1 + 4
    assert cat.compact().files_after == 4  # Jan | Feb 3..10 | Feb 16 | Feb 17..20
    assert state(cat, plain=False) == before
    assert_disjoint_and_ordered(cat)
    assert cat.compact().groups_merged == 0


# ------------------------------------------------------------------ automatic compaction
def test_writes_compact_above_the_threshold_and_0_disables(tmp_path):
    root = tmp_path / "auto"
    root.mkdir()
    c = Catalog.from_config(
        {"path": str(root), "lock_timeout": 5, "compact_threshold": 10, "compact_period": "month"}
    )
    assert (c.compact_threshold, c.compact_period) == (10, "month")
    eq = make_equity(IID, 2)
    got = [c.write_bars(BT, day(d), instrument=eq) for d in range(0, 12)]
    assert [r.compacted for r in got] == [0] * 10 + [11, 0]  # 11 files > 10: all of January
    assert got[10].as_dict()["compacted"] == 11 and len(c.files(BT)) == 2
    assert len(Catalog(root).read(BT)) == 12 * 390

    off = tmp_path / "off"
    off.mkdir()
    c0 = Catalog.from_config({"path": str(off), "lock_timeout": 5, "compact_threshold": 0})
    results = [c0.write_bars(BT, day(d), instrument=eq) for d in range(0, 30)]
    assert all(r.compacted == 0 for r in results) and len(c0.files(BT)) == 30


# ------------------------------------------------------------------ crash safety
_COMPACT = (
    "import sys; from ntrader.catalog.catalog import Catalog; "
    "Catalog(sys.argv[1], compact_threshold=0).compact(period='month')"
)


@pytest.mark.parametrize(
    ("commit", "point"),
    [
        ("exchange", "before_swap"),
        ("exchange", "after_swap"),
        ("journal", "before_journal"),
        ("journal", "after_journal"),
        ("journal", "mid_apply"),
    ],
)
def test_sigkill_during_compaction_loses_nothing(cat, commit, point):
    appends(cat, range(0, 45))  # January and February: two groups
    before = state(cat)
    names = {f.path.name for f in cat.files(BT)}
    env = {**os.environ, "NTRADER_FAULT": point}
    if commit == "journal":
        env["NTRADER_COMMIT"] = "journal"
    p = subprocess.run(
        [sys.executable, "-c", _COMPACT, str(cat.root)], env=env, cwd=REPO, capture_output=True
    )
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    reader = Catalog(cat.root)  # ntrader's readers read through a pending journal
    frame_after = reader.read(BT)
    assert tuple(getattr(frame_after, k).tolist() for k in COLS) == before[0]
    assert [str(b) for b in reader.read_bars(BT)] == before[2]
    now = {f.path.name for f in reader.files(BT)}
    assert now == names or len(now) == len(names) - 29  # unchanged, or January merged (30 -> 1)
    plain = [str(b) for b in ParquetDataCatalog(str(cat.root)).bars([BT])]
    if point == "mid_apply":  # the journal fallback: a plain reader misses the moved files
        assert set(plain) <= set(before[3])  # until the next ntrader writer completes it
    else:
        assert plain == before[3]
    done = Catalog(cat.root, compact_threshold=0).compact(
        period="month"
    )  # recovers, then finishes the job
    assert len(cat.files(BT)) == 2 and done.files_after == 2
    assert state(cat) == before
    assert not list(cat.root.rglob("*.tmp")) and not (cat.root / ".ntrader/journal.json").exists()


# ------------------------------------------------------------------ concurrent readers
@pytest.mark.parametrize("commit", ["exchange", "journal"])
def test_a_reader_that_listed_before_the_compaction_reads_the_same_bars(cat, commit, monkeypatch):
    """The reader lists the 40 daily files, then a writer compacts them away before it opens
    any: it reads them from the retained history (snapshot), the same bars."""
    if commit == "journal":
        monkeypatch.setenv("NTRADER_COMMIT", "journal")
    appends(cat, range(0, 40))
    before = state(cat)
    reader = Catalog(cat.root)
    listed: list[int] = []
    gone: list[int] = []
    original = reader._snap.files

    def list_then_compact(bt: str):
        if len(listed) == 1:  # before read_bars lists: 30 more daily files (Feb 11 .. Mar 11)
            appends(cat, range(40, 70))
        files = original(bt)
        listed.append(len(files))
        if len(listed) <= 2:  # read, then read_bars: each loses files right after listing
            Catalog(cat.root, compact_threshold=0).compact(period="month")
            gone.append(sum(not os.path.exists(f.path) for f in files))
        return files

    monkeypatch.setattr(reader._snap, "files", list_then_compact)
    got = reader.read(BT)
    assert tuple(getattr(got, k).tolist() for k in COLS) == before[0]
    bars = [str(b) for b in reader.read_bars(BT)]
    # read: 40 files listed, all merged away (Jan, Feb); read_bars: Jan + Feb + 30 new files
    # listed, all but January's merged away (Feb, Mar)
    assert (listed, gone) == ([40, 32], [40, 31])
    assert bars == [str(b) for b in Catalog(cat.root).read_bars(BT)]
    assert len(bars) == 70 * 390 and bars[: 40 * 390] == before[2]
    assert len(cat.files(BT)) == 3


# ------------------------------------------------------------------ S3
def test_compaction_on_s3(s3):
    url = f"s3://{s3.fresh_bucket()}/catalog"
    c = Catalog(url, compact_threshold=0)
    appends(c, range(0, 8))
    appends(c, range(30, 34))  # 2024-02-01 ..
    f0 = c.read(BT)
    bars = [str(b) for b in c.read_bars(BT)]
    result = c.compact(period="month")
    assert (result.files_before, result.files_after, result.groups_merged) == (12, 2, 2)
    again = Catalog(url)
    f1 = again.read(BT)
    assert all(np.array_equal(getattr(f0, k), getattr(f1, k)) for k in COLS)
    assert [str(b) for b in again.read_bars(BT)] == bars
    plain = ParquetDataCatalog(url.removeprefix("s3://"), **s3.nautilus_options()).bars([BT])
    assert [str(b) for b in plain] == bars
    assert again.compact(period="month").groups_merged == 0


# ------------------------------------------------------------------ make compact
def test_make_compact_one_symbol_then_all(tmp_path):
    root, runs = tmp_path / "cat 'x' $D", tmp_path / "runs"
    root.mkdir()
    c = Catalog(root, compact_threshold=0)
    appends(c, range(0, 25))
    msft = resolve_instrument_id("MSFT")
    msft_bt = str(bar_type_for(msft, "1-MINUTE-LAST"))
    appends(c, range(0, 5), msft_bt, msft)
    before = state(c), state(c, msft_bt)

    p = make("compact", SYMBOL="AAPL", CATALOG=str(root), RUNS=str(runs))
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"{BT}: 25 -> 1 file(s)" in p.stdout, p.stdout
    assert "by year" in p.stdout  # conf/catalog/default.yaml: compact_period
    assert msft_bt not in p.stdout and len(c.files(msft_bt)) == 5 and len(c.files(BT)) == 1
    (summary,) = runs.rglob("summary.json")
    assert json.loads(summary.read_text())["counts"] == {
        "bar_types": 1, "files_before": 25, "files_after": 1, "groups_merged": 1
    }  # fmt: skip

    p = make("compact", CATALOG=str(root), RUNS=str(runs))
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"{msft_bt}: 5 -> 1 file(s)" in p.stdout and f"{BT}: 1 file(s), already" in p.stdout
    assert (state(c), state(c, msft_bt)) == before


def test_make_compact_refuses_a_hostile_symbol_and_a_missing_catalog(tmp_path):
    runs = tmp_path / "runs"
    p = make("compact", SYMBOL="$(touch pwned)", CATALOG=str(tmp_path), RUNS=str(runs))
    assert p.returncode == 2 and "input error: SYMBOL: invalid symbol" in p.stderr, p.stderr
    assert not (tmp_path / "pwned").exists() and not (REPO / "pwned").exists()
    missing = tmp_path / "no-such-catalog"
    p = make("compact", CATALOG=str(missing), RUNS=str(runs))
    assert "scripts/scan.py exited with code 1" in p.stderr, p.stderr
    assert not missing.exists()
    with pytest.raises(DataError):
        Catalog(missing).compact()
    assert not missing.exists()


def test_period_of_is_utc():
    ns = int(dt.datetime(2024, 1, 31, 23, 59, tzinfo=dt.UTC).timestamp()) * 10**9
    assert period_of(ns, "month") == (2024, 1) and period_of(ns + 60 * 10**9, "month") == (2024, 2)
    assert period_of(ns, "year") == (2024,) and period_of(ns, "all") == ()

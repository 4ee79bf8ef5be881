"""Reads as of a catalog version and the retention behind them (issue 15): every version of a
bar type's commit history reads back exactly what it held right after its commit — through the
Python API, ``make scan``/``check`` and on S3 — until ``make gc`` (or a writer, after
``catalog.retain_days``) pruned the files it needs; then it refuses instead of reading other data.
Writers refuse an as-of catalog; plain Nautilus readers see the current data only."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog import history as history_mod
from ntrader.catalog.asof import VersionPruned
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.commitlog import catalog_version, commits
from ntrader.errors import InputError

from .conftest import MINUTE, T0, frame, run_make
from .s3_fixtures import s3 as s3
from .test_import_csv import minute_csv

BT = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"


def _versions(c: Catalog, bt, eq) -> dict[int, tuple[list[int], list[float]]]:
    """Five commits of every kind (new, add-only append, merge, overwrite, compaction); the
    bars right after each, by catalog version."""
    seen: dict[int, tuple[list[int], list[float]]] = {}

    def keep() -> None:
        f = c.read(bt)
        seen[catalog_version(c)] = (f.ts_event.tolist(), f.close.tolist())

    c.write_bars(bt, frame(range(0, 390)), instrument=eq)
    keep()
    c.write_bars(bt, frame(range(24 * 60, 24 * 60 + 390), 101.0))  # the next day: a new file
    keep()
    c.write_bars(bt, frame(range(100, 110), 105.0), mode="merge")  # rewrites day one's file
    keep()
    c.write_bars(bt, frame(range(0, 50), 99.0), mode="overwrite")
    keep()
    c.compact([str(bt)], "all")  # one file for both days
    keep()
    return seen


@pytest.mark.parametrize("where", ["local", "s3"])
def test_every_version_reads_back_what_it_held(where, request, tmp_path, aapl):
    _, bt, eq = aapl
    if where == "s3":
        root = f"s3://{request.getfixturevalue('s3').fresh_bucket()}/catalog"
    else:
        root = str(tmp_path / "catalog")
    c = Catalog(root)
    seen = _versions(c, bt, eq)
    assert sorted(seen) == [1, 2, 3, 4, 5] and c.history.log.head() == 5
    assert len(c.files(bt)) == 1  # compacted
    log = commits(c, str(bt))
    assert [e["version"] for e in log] == [1, 2, 3, 4, 5]
    assert log[1]["removed"] == [] and len(log[4]["removed"]) == 2  # append; compaction
    for version, (ts, close) in seen.items():
        then = Catalog(root, as_of=version)
        got = then.read(bt)
        assert got.ts_event.tolist() == ts and got.close.tolist() == close, version
        bars = then.read_bars(bt)  # Nautilus' Rust reader over the same (retained) files
        assert [b.ts_event for b in bars] == ts
        assert [b.close.as_double() for b in bars] == close
        assert then.read_ts_event(bt).tolist() == ts
        assert then.availability(bt).rows == len(ts)
        assert catalog_version(then) == version and then.bar_types() == [str(bt)]
    # version 3 needed the merged file of day one that the overwrite removed: from history
    v3 = {f.path.name for f in Catalog(root, as_of=3).files(bt)}
    assert v3 - {f.path.name for f in c.files(bt)} == set(log[2]["added"]) | set(log[1]["added"])
    # version 0: before the first commit, nothing
    assert Catalog(root, as_of=0).bar_types() == [] and not Catalog(root, as_of=0).files(bt)
    # plain Nautilus readers: today's data only (the history lives outside data/)
    plain = c.nautilus().bars([str(bt)])
    assert [b.ts_event for b in plain] == seen[5][0]
    if where == "local":
        assert [b.ts_event for b in ParquetDataCatalog(root).bars([str(bt)])] == seen[5][0]


def test_as_of_is_read_only_and_checked(tmp_path, aapl):
    _, bt, eq = aapl
    root = tmp_path / "catalog"
    c = Catalog(root)
    c.write_bars(bt, frame(range(0, 10)), instrument=eq)
    for bad in (2, -1, "x", ""):
        with pytest.raises(InputError, match=r"catalog\.as_of"):
            Catalog(root, as_of=bad)
    then = Catalog(root, as_of=1)
    with pytest.raises(InputError, match="read-only"):
        then.write_bars(bt, frame(range(20, 30)), instrument=eq)
    with pytest.raises(InputError, match="read-only"):
        then.compact()
    assert c.read(bt).ts_event.tolist() == [T0 + m * MINUTE for m in range(10)]
    assert Catalog(root, as_of="v1").as_of == 1  # as `make log` prints it


def test_the_writing_scripts_refuse_as_of_before_any_work(run_script, tmp_path):
    """migrate (like import and fetch) writes: as_of is refused before the database is asked —
    a port nothing listens on would otherwise be exit 3."""
    r = run_script(
        "migrate", f"catalog.path={tmp_path}", "catalog.as_of=1",
        env={"DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/db"},
    )  # fmt: skip
    assert r.code == 2, r.stderr[-2000:]
    assert "catalog.as_of=1: a catalog read as of a version is read-only" in r.stderr


def test_pruned_versions_refuse_and_writers_prune_in_bounded_passes(tmp_path, aapl, monkeypatch):
    _, bt, eq = aapl
    root = tmp_path / "catalog"
    c = Catalog(root, retain_days=30)
    c.write_bars(bt, frame(range(0, 100)), instrument=eq)
    for i in range(4):  # each merge retains the file it replaced: 4 retained
        c.write_bars(bt, frame(range(0, 100), 101.0 + i), mode="merge")
    assert len(c.history.names(str(bt))) == 4
    assert Catalog(root, as_of=1).read(bt).close.tolist() == frame(range(0, 100)).close.tolist()
    # inside the retention a writer prunes nothing, gc neither
    assert Catalog(root).gc().files == 0 and len(c.history.names(str(bt))) == 4

    time.sleep(0.3)
    monkeypatch.setattr(history_mod, "PRUNE_BATCH", 3)
    short = Catalog(root, retain_days=0.2 / 86400)
    assert short.history.prune([str(bt)]) == 3  # a writer's pass: at most PRUNE_BATCH files
    assert len(c.history.names(str(bt))) == 1
    short.history.retain_s = 3600.0  # (so this writer's own pass leaves the last one to gc)
    short.write_bars(bt, frame(range(200, 210)), instrument=eq)  # v6, add-only: retains nothing
    done = Catalog(root, retain_days=0.2 / 86400).gc()  # the rest, with what it freed
    assert done.files == 1 and done.bytes > 0 and done.by_bar_type == {str(bt): 1}
    assert "deleted 1 retained file(s)" in done.render(short.url)
    assert not c.history.names(str(bt))
    with pytest.raises(VersionPruned, match=r"pruned after catalog\.retain_days"):
        Catalog(root, as_of=1).read(bt)
    # the newest versions need no retained file: still readable
    assert len(Catalog(root, as_of=6).read(bt)) == 110
    assert [e["version"] for e in commits(c, str(bt))] == [1, 2, 3, 4, 5, 6]  # the log is kept


def test_make_scan_check_and_log_as_of_a_version(run_script, tmp_path, aapl):
    _, bt, eq = aapl
    root = tmp_path / "catalog"
    c = Catalog(root)
    c.write_bars(bt, frame(range(0, 390)), instrument=eq)  # v1: 2024-01-02
    c.write_bars(bt, frame(range(24 * 60, 24 * 60 + 390)))  # v2: + 2024-01-03
    c.write_bars(bt, frame(range(0, 390), 102.0), mode="merge")  # v3: day one's prices
    runs = tmp_path / "runs"

    scan = run_make("scan", f"CATALOG={root}", "FORMAT=json", "ARGS=catalog.as_of=1", runs=runs)
    assert scan.returncode == 0, scan.stderr
    (row,) = json.loads(scan.stdout)
    assert (row["bar_type"], row["rows"], row["files"]) == (BT, 390, 1)
    now = run_make("scan", f"CATALOG={root}", "FORMAT=json", runs=runs)
    assert json.loads(now.stdout)[0]["rows"] == 780

    check = run_script(
        "scan",
        f"catalog.path={root}",
        "symbol=AAPL",
        "format=json",
        "catalog.as_of=1",
        "start=2024-01-02",
        "end=2024-01-03",
    )
    assert check.code == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["availability"]["rows"] == 390
    assert report["sessions"] == {"expected": 2, "present": 1, "missing": 1}
    assert [(g["kind"], g["first"]) for g in report["gaps"]] == [("missing sessions", "2024-01-03")]
    assert check.summary()["catalog"] == str(root)

    log = run_make("log", "SYMBOL=AAPL", f"CATALOG={root}", "FORMAT=json", runs=runs)
    assert [e["version"] for e in json.loads(log.stdout)["commits"]] == [1, 2, 3]

    # a writer refuses an as-of catalog (exit 2), a version the catalog never had too
    minute_csv(tmp_path / "x.csv", "2024-01-04 09:30")
    imp = run_script(
        "import_csv",
        f"catalog.path={root}",
        f"csv.path={tmp_path / 'x.csv'}",
        "symbol=AAPL",
        "catalog.as_of=1",
    )
    assert imp.code == 2 and "read-only" in imp.stderr
    far = run_script("scan", f"catalog.path={root}", "catalog.as_of=9")
    assert far.code == 2 and "latest version is 3" in far.stderr

    gc = run_make("gc", f"CATALOG={root}", "ARGS=catalog.retain_days=0", runs=runs)
    assert gc.returncode == 0 and "deleted 1 retained file(s)" in gc.stdout  # v3's merge
    gone = run_script("scan", f"catalog.path={root}", "catalog.as_of=1")
    assert gone.code == 1 and "pruned" in gone.stderr
    assert np.array_equal(Catalog(root).read(bt).ts_event, c.read(bt).ts_event)


def test_an_as_of_read_during_commits_reads_its_version(tmp_path, aapl):
    """A writer keeps merging, appending and compacting while readers read versions 1 and 2:
    every read is exactly that version (later commits, visible or half-done, are undone)."""
    import threading

    _, bt, eq = aapl
    root = tmp_path / "catalog"
    c = Catalog(root)
    c.write_bars(bt, frame(range(0, 390)), instrument=eq)
    c.write_bars(bt, frame(range(24 * 60, 24 * 60 + 390), 101.0))
    want = {v: Catalog(root, as_of=v).read(bt).close.tolist() for v in (1, 2)}
    stop = threading.Event()

    def writer() -> None:
        w = Catalog(root, compact_threshold=3, compact_period="all")
        i = 0
        while not stop.is_set():
            i += 1
            w.write_bars(bt, frame(range(50, 60), 110.0 + i % 5), mode="merge")
            w.write_bars(bt, frame(range(i * 24 * 60 + 2880, i * 24 * 60 + 2890)))

    t = threading.Thread(target=writer)
    t.start()
    reads = 0
    try:
        deadline = time.time() + 4
        while time.time() < deadline:
            for v, closes in want.items():
                assert Catalog(root, as_of=v).read(bt).close.tolist() == closes, v
                reads += 1
    finally:
        stop.set()
        t.join()
    head = Catalog(root).history.log.head()
    assert reads > 10 and head > 10  # many commits happened during the reads
    assert [e["version"] for e in commits(c, str(bt))] == list(range(1, head + 1))

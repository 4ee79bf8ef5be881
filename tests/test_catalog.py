"""Catalog layer on a real ParquetDataCatalog directory: writes, conflict modes, reads, safety."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.files import interval_file_name
from ntrader.catalog.inventory import list_catalog
from ntrader.catalog.store import open_store
from ntrader.errors import CatalogCorruption, InputError, SystemFailure

from .conftest import MINUTE, T0, frame, tree_snapshot

CASES = {  # existing minutes, incoming minutes
    "overlapping": (range(0, 100), range(50, 150)),
    "adjacent": (range(0, 100), range(100, 200)),
    "disjoint": (range(0, 100), range(300, 400)),
    "inside": (range(0, 100), range(10, 20, 2)),
    "covering": (range(40, 60), range(0, 100, 3)),
}


def model(existing: BarFrame, incoming: BarFrame, mode: str) -> dict[int, tuple]:
    """The expected catalog content as {ts: (o, h, l, c, v)} — a plain-Python reference."""

    def rows(f: BarFrame) -> dict[int, tuple]:
        cols = zip(f.open, f.high, f.low, f.close, f.volume, strict=True)
        return dict(zip(f.ts_event.tolist(), cols, strict=True))

    old, new = rows(existing), rows(incoming)
    if mode == "skip":
        return {**new, **old}
    if mode == "merge":
        return {**old, **new}
    lo, hi = incoming.first_ns, incoming.last_ns
    return {**{t: v for t, v in old.items() if not lo <= t <= hi}, **new}


def content(c: Catalog, bt) -> dict[int, tuple]:
    bars = ParquetDataCatalog(str(c.root)).bars([str(bt)])
    ts = [b.ts_event for b in bars]
    assert ts == sorted(set(ts)), "duplicate or unsorted timestamps"
    return {
        b.ts_event: (
            b.open.as_double(),
            b.high.as_double(),
            b.low.as_double(),
            b.close.as_double(),
            b.volume.as_double(),
        )
        for b in bars
    }


def assert_no_overlap(c: Catalog, bt) -> None:
    files = c.files(bt)
    for a, b in itertools.pairwise(files):
        assert a.last_ns < b.first_ns, f"overlapping files {a.path.name} {b.path.name}"


@pytest.mark.parametrize("mode", ["skip", "overwrite", "merge"])
@pytest.mark.parametrize("case", list(CASES))
def test_conflict_modes(catalog, aapl, mode, case):
    _, bt, eq = aapl
    old_m, new_m = CASES[case]
    existing, incoming = frame(old_m, 100.0), frame(new_m, 200.0)
    catalog.write_bars(bt, existing, instrument=eq)
    result = catalog.write_bars(bt, incoming, mode=mode)
    expected = model(existing, incoming, mode)
    assert content(catalog, bt) == expected
    assert_no_overlap(catalog, bt)
    new_ts = set(incoming.ts_event.tolist()) - set(existing.ts_event.tolist())
    assert result.rows_added == len(new_ts)
    if mode == "skip":
        assert result.rows_skipped == len(incoming) - len(new_ts)
    got = catalog.read(bt)
    assert got.ts_event.tolist() == sorted(expected)
    assert availability_matches(catalog, bt, expected)


def availability_matches(c: Catalog, bt, expected: dict) -> bool:
    a = c.availability(bt)
    return (a.rows, a.first_ns, a.last_ns) == (len(expected), min(expected), max(expected))


def test_nautilus_reads_what_we_write_exactly(catalog, aapl):
    _, bt, eq = aapl
    f = frame(range(500), 187.31)
    catalog.write_bars(bt, f, instrument=eq)
    bars = ParquetDataCatalog(str(catalog.root)).bars([str(bt)])
    assert len(bars) == 500
    assert [b.close.as_double() for b in bars] == f.close.tolist()
    assert [b.ts_event for b in bars] == f.ts_event.tolist()
    assert str(bars[0].bar_type) == "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
    inst = ParquetDataCatalog(str(catalog.root)).instruments()
    assert [str(i.id) for i in inst] == ["AAPL.NASDAQ"] and inst[0].price_precision == 2


def test_skip_of_known_data_writes_nothing(catalog, aapl):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    before = [(f.path.name, f.path.stat().st_mtime_ns) for f in catalog.files(bt)]
    r = catalog.write_bars(bt, frame(range(10)), mode="skip")
    assert (r.files_written, r.rows_skipped) == (0, 10)
    assert [(f.path.name, f.path.stat().st_mtime_ns) for f in catalog.files(bt)] == before


def test_read_range_is_inclusive(catalog, aapl):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(100)), instrument=eq)
    catalog.write_bars(bt, frame(range(200, 300)))
    got = catalog.read(bt, T0 + 50 * MINUTE, T0 + 250 * MINUTE)
    assert got.ts_event.tolist() == [T0 + m * MINUTE for m in [*range(50, 100), *range(200, 251)]]
    assert len(catalog.read_bars(bt, T0, T0 + 9 * MINUTE)) == 10


def test_finer_prices_than_instrument_are_refused(catalog, aapl):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(5)), instrument=eq)
    before = {f.path.name for f in catalog.files(bt)}
    with pytest.raises(InputError, match="price precision 2"):
        catalog.write_bars(bt, frame(range(10, 15), 100.123, precision=3))
    assert {f.path.name for f in catalog.files(bt)} == before
    # coarser data is stored at the instrument's precision
    coarse = frame(range(20, 25), 101.0, precision=1)
    catalog.write_bars(bt, coarse)
    assert [v[3] for t, v in content(catalog, bt).items() if t >= coarse.first_ns] == list(
        coarse.close
    )
    assert catalog.read(bt).price_precision == 2


def test_corrupt_file_is_reported_left_in_place_and_moved_only_by_repair(catalog, aapl):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    catalog.write_bars(bt, frame(range(20, 30)))
    bad = catalog.files(bt)[1].path
    bad.write_bytes(b"PAR1 this is not parquet")
    before = tree_snapshot(catalog.root)
    for read in (catalog.availability, catalog.read, catalog.read_bars, list_catalog):
        with pytest.raises(CatalogCorruption, match="left in place") as err:
            read(catalog) if read is list_catalog else read(bt)
        assert bad.name in str(err.value) and "magic bytes" in str(err.value)
        assert "make scan ARGS=repair=true" in (err.value.hint or "")
    assert tree_snapshot(catalog.root) == before  # readers changed nothing, took no lock
    moved = catalog.quarantine_corrupt()
    assert [(m.path, "magic bytes" in m.reason) for m in moved] == [(str(bad), True)]
    assert not bad.exists() and Path(moved[0].moved_to).read_bytes() == b"PAR1 this is not parquet"
    assert Path(moved[0].moved_to).is_relative_to(catalog.root / ".corrupt")
    assert len(catalog.read(bt)) == 10  # the rest stays readable
    assert len(ParquetDataCatalog(str(catalog.root)).bars([str(bt)])) == 10
    assert catalog.quarantine_corrupt([str(bt)]) == []


def test_a_writer_quarantines_a_corrupt_file_it_merges_with(catalog, aapl):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    bad = catalog.files(bt)[0].path
    bad.write_bytes(bad.read_bytes()[:-9])  # truncated: no footer
    with pytest.raises(CatalogCorruption, match=r"moved to .*nothing was written"):
        catalog.write_bars(bt, frame(range(5, 15)))
    assert not bad.exists() and list((catalog.root / ".corrupt").rglob("*.parquet"))
    catalog.write_bars(bt, frame(range(5, 15)))  # the rerun writes the range
    assert len(catalog.read(bt)) == 10


def test_a_decode_error_that_does_not_repeat_is_not_corruption(catalog, aapl, monkeypatch):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    real, calls = catalog.store.read_footers, []

    def flaky(files):
        calls.append(1)
        if len(calls) == 1:
            return [pa.ArrowInvalid("Parquet magic bytes not found in footer") for _ in files]
        return real(files)

    monkeypatch.setattr(catalog.store, "read_footers", flaky)
    assert catalog.availability(bt).rows == 10
    assert not (catalog.root / ".corrupt").exists()


@pytest.mark.parametrize("kind", ["directory", "dangling symlink"])
def test_unreadable_entries_are_system_failures_and_nothing_moves(catalog, aapl, kind):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    catalog.write_bars(bt, frame(range(20, 30)))
    bad = catalog.files(bt)[1].path
    bad.unlink()
    if kind == "directory":
        bad.mkdir()
        expected = "is not a regular file"
    else:
        bad.symlink_to(catalog.root / "nowhere.parquet")
        expected = "kept vanishing"
    before = tree_snapshot(catalog.root)
    for read in (catalog.availability, catalog.read, catalog.read_bars):
        with pytest.raises(SystemFailure, match=expected) as err:
            read(bt)
        assert not isinstance(err.value, CatalogCorruption)
    if kind == "directory":
        with pytest.raises(SystemFailure, match="could not be checked and were left alone"):
            catalog.quarantine_corrupt()
    assert tree_snapshot(catalog.root) == before and (bad.is_dir() or bad.is_symlink())
    assert not (catalog.root / ".corrupt").exists()


def test_interrupted_write_is_rolled_forward(catalog, aapl):
    """A writer killed after its journal was durable: the next writer completes the swap."""
    bt, old, tmp, final, journal = _dead_writer(catalog, aapl)
    journal.write_text(
        json.dumps({"bar_type": str(bt), "add": [[str(tmp), str(final)]], "remove": [str(old)]})
    )
    orphan = Path(catalog.store.temp_path(final))  # of a writer killed before its journal
    orphan.write_bytes(b"partial")
    catalog.write_bars(bt, frame(range(30, 35)))
    assert not journal.exists() and not tmp.exists() and not orphan.exists()
    assert len(content(catalog, bt)) == 25
    assert_no_overlap(catalog, bt)


def _writer(root: str, start: int, n: int) -> None:
    from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id

    iid = resolve_instrument_id("AAPL")
    c = Catalog(root)
    for i in range(n):
        c.write_bars(
            bar_type_for(iid, "1-MINUTE-LAST"),
            frame(range(start + i * 10, start + i * 10 + 15)),
            mode="merge",
            instrument=make_equity(iid, 2),
        )


def test_concurrent_writers_serialize(catalog, aapl):
    _, bt, _ = aapl
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(catalog.root), s, 8)) for s in (0, 40)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert set(content(catalog, bt)) == {T0 + m * MINUTE for m in range(0, 125)}
    assert_no_overlap(catalog, bt)


def test_catalog_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("NAUTILUS_PATH", raising=False)
    assert open_store(None).root == Path(os.getcwd()) / "data" / "catalog"
    monkeypatch.setenv("NAUTILUS_PATH", str(tmp_path))
    assert open_store(None).root == tmp_path / "catalog"
    assert open_store(tmp_path / "x").root == tmp_path / "x"
    assert open_store(f"file://{tmp_path}/y").root == tmp_path / "y"
    with pytest.raises(InputError, match="not supported"):
        open_store("gs://bucket/catalog")


def test_empty_frame_is_a_noop(catalog, aapl):
    _, bt, eq = aapl
    r = catalog.write_bars(bt, BarFrame.empty(), instrument=eq)
    assert r.files_written == 0 and catalog.files(bt) == []
    assert np.asarray(catalog.read(bt).ts_event).size == 0


# ------------------------------------------------------------------ names, history, snapshots
def test_same_range_merged_many_times_never_reuses_a_name(tmp_path, aapl):
    """Every merge of the same range makes a file with a new name (the stated interval widened
    by a few ns), so a name always means one content; plain Nautilus reads exactly what we do,
    and never the retained history."""
    _, bt, eq = aapl
    c = Catalog(tmp_path / "catalog", retain_days=1 / 24)
    c.write_bars(bt, frame(range(100)), instrument=eq)
    c.write_bars(bt, frame(range(200, 300)), instrument=eq)
    content_of: dict[str, bytes] = {}
    for i in range(12):
        c.write_bars(bt, frame(range(0, 100), 101.0 + i), mode="merge")
        for f in c.files(bt):
            data = f.path.read_bytes()
            assert content_of.setdefault(f.path.name, data) == data, f"{f.path.name} rewritten"
        assert_no_overlap(c, bt)
    assert len(content_of) == 13  # 12 merged files + the later range, each name once
    first = c.files(bt)[0]
    widened = (T0 - first.first_ns) + (first.last_ns - (T0 + 99 * MINUTE))
    assert T0 - first.first_ns >= 0 and 0 < widened <= 12  # a few ns wider than the data
    ours = c.read(bt)
    plain = ParquetDataCatalog(str(c.root)).bars([str(bt)])
    assert [b.ts_event for b in plain] == ours.ts_event.tolist()
    assert [b.close.as_double() for b in plain] == ours.close.tolist()
    assert len(c.read_bars(bt, T0, T0 + 99 * MINUTE)) == 100
    # Nautilus' own interval filter selects the widened file for a range inside it
    sub = ParquetDataCatalog(str(c.root)).bars([str(bt)], start=T0, end=T0 + 5 * MINUTE)
    assert [b.ts_event for b in sub] == [T0 + m * MINUTE for m in range(6)]
    retained = c.history.dir(str(bt))
    assert len(c.history.names(str(bt))) == 12  # every removed file, byte for byte
    log = sorted(Path(retained, "commits").iterdir())
    assert len(log) == 14 and json.loads(log[-1].read_text())["removed"]


def test_history_is_pruned_by_writers_after_retention(tmp_path, aapl):
    _, bt, eq = aapl
    c = Catalog(tmp_path / "catalog", retain_days=1 / 86400)
    c.write_bars(bt, frame(range(100)), instrument=eq)
    c.write_bars(bt, frame(range(0, 100), 101.0))
    assert len(c.history.names(str(bt))) == 1
    before = c.history.names(str(bt))
    time.sleep(1.2)
    c.write_bars(bt, frame(range(0, 100), 102.0))  # prunes the older one, retains the newer
    assert c.history.names(str(bt)).isdisjoint(before) and len(c.history.names(str(bt))) == 1
    assert len(list(Path(c.history.dir(str(bt)), "commits").iterdir())) == 1


def test_a_listed_file_removed_by_a_commit_is_read_from_history(catalog, aapl, monkeypatch):
    """A reader lists, a commit removes a listed file, the reader reads it from the history:
    the result is the listed commit's data, whole."""
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(100)), instrument=eq)
    catalog.write_bars(bt, frame(range(200, 300)), instrument=eq)
    listing = catalog.files(bt)
    other = Catalog(catalog.root)
    other.write_bars(bt, frame(range(50, 250), 150.0))  # replaces both files
    assert all(not f.path.exists() for f in listing)
    monkeypatch.setattr(catalog._snap, "files", lambda bt: listing)
    monkeypatch.setattr(catalog._snap, "tree", lambda bts: {str(bt): listing})
    old = catalog.read(bt)
    assert old.ts_event.tolist() == [T0 + m * MINUTE for m in [*range(100), *range(200, 300)]]
    assert len(catalog.read_bars(bt)) == 200 and catalog.availability(bt).rows == 200
    monkeypatch.undo()
    assert len(catalog.read(bt)) == 300


def test_readers_read_through_a_dead_writers_journal_without_writing(catalog, aapl):
    bt, old, tmp, final, journal = _dead_writer(catalog, aapl)
    plan = {"bar_type": str(bt), "add": [[str(tmp), str(final)]], "remove": [str(old)]}
    journal.write_text(json.dumps(plan))
    before = tree_snapshot(catalog.root)
    assert catalog.read(bt).ts_event.tolist() == frame(range(20)).ts_event.tolist()
    assert len(catalog.read_bars(bt)) == 20 and catalog.availability(bt).rows == 20
    assert [a.rows for a in list_catalog(catalog)] == [20]
    assert tree_snapshot(catalog.root) == before  # nothing rolled forward, no lock taken
    old.unlink()  # the dead writer got as far as removing the old file
    assert catalog.read(bt).ts_event.tolist() == frame(range(20)).ts_event.tolist()


# ------------------------------------------------------------------ where writes may go
def test_bar_types_are_validated_and_writes_stay_inside_the_catalog(tmp_path, aapl):
    _, bt, eq = aapl
    c = Catalog(tmp_path / "catalog")
    for bad in ("A/../../../../outside-1-MINUTE-LAST-EXTERNAL", "..", "aapl.nasdaq-1-MINUTE-LAST"):
        with pytest.raises(InputError, match="invalid bar type"):
            c.write_bars(bad, frame(range(5)), instrument=eq)
        with pytest.raises(InputError, match="invalid bar type"):
            c.read(bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    c.write_bars(bt, frame(range(5)), instrument=eq)
    (c.root / "data" / "bar" / "MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL").symlink_to(outside)
    with pytest.raises(SystemFailure, match="outside the catalog"):
        c.write_bars("MSFT.NASDAQ-1-MINUTE-LAST-EXTERNAL", frame(range(5)), instrument=eq)
    assert list(outside.iterdir()) == []
    meta = tmp_path / "meta-elsewhere"
    meta.mkdir()
    c2 = tmp_path / "c2"
    c2.mkdir()
    (c2 / ".ntrader").symlink_to(meta)
    with pytest.raises(SystemFailure, match="outside the catalog"):
        Catalog(c2).write_bars(bt, frame(range(5)), instrument=eq)
    assert list(meta.iterdir()) == []


def test_s3_keys_must_stay_under_the_prefix():
    from pathlib import PurePosixPath

    from ntrader.catalog.guard import KeyFence

    fence = KeyFence(PurePosixPath("bucket/catalog"))
    assert str(fence.inside("bucket/catalog/data/bar/x/y.parquet")).endswith("y.parquet")
    for bad in ("bucket/catalog/../other/x", "bucket/catalogue/x", "bucket/catalog//x", "x"):
        with pytest.raises(SystemFailure, match="not a normalized key under"):
            fence.inside(bad)


def test_a_catalog_root_that_is_a_file_is_an_input_error(tmp_path):
    f = tmp_path / "catalog.txt"
    f.write_text("not a catalog")
    for root in (f, f / "sub"):
        with pytest.raises(InputError, match="not a directory"):
            Catalog(root)


def _dead_writer(catalog, aapl):
    """10 bars committed, then a writer that wrote 20 bars to a temp file and died before its
    journal: (bar type, the old file, the temp file, its final path, the journal path)."""
    from ntrader.catalog.codec import frame_to_table
    from ntrader.catalog.files import write_table_durably

    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    old = catalog.files(bt)[0].path
    new = frame(range(20))
    final = catalog.bar_dir(bt) / interval_file_name(new.first_ns, new.last_ns)
    tmp = Path(catalog.store.temp_path(final))
    write_table_durably(frame_to_table(new, bt), tmp)
    return bt, old, tmp, final, catalog.root / ".ntrader" / "journal.json"

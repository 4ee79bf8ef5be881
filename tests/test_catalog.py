"""Catalog layer on a real ParquetDataCatalog directory: writes, conflict modes, reads, safety."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.files import interval_file_name
from ntrader.catalog.store import open_store
from ntrader.errors import CatalogCorruption, InputError

from .conftest import MINUTE, T0, frame

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


def test_corrupt_file_is_quarantined(catalog, aapl):
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    catalog.write_bars(bt, frame(range(20, 30)))
    bad = catalog.files(bt)[1].path
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(CatalogCorruption, match="moved to"):
        catalog.availability(bt)
    assert not bad.exists()
    moved = list((catalog.root / ".corrupt").rglob("*.parquet"))
    assert [p.name for p in moved] == [bad.name]
    assert len(catalog.read(bt)) == 10  # the rest stays readable
    assert len(ParquetDataCatalog(str(catalog.root)).bars([str(bt)])) == 10


def test_interrupted_write_is_rolled_forward(catalog, aapl):
    """A writer killed after its journal was durable: the next writer completes the swap."""
    _, bt, eq = aapl
    catalog.write_bars(bt, frame(range(10)), instrument=eq)
    old = catalog.files(bt)[0].path
    from ntrader.catalog.codec import frame_to_table
    from ntrader.catalog.files import write_table_durably

    new = frame(range(20))
    final = catalog.bar_dir(bt) / interval_file_name(new.first_ns, new.last_ns)
    tmp = Path(catalog.store.temp_path(final))
    write_table_durably(frame_to_table(new, bt), tmp)
    journal = catalog.root / ".ntrader" / "journal.json"
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

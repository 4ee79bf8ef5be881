"""The load benchmark of ``bench/run.py``: reading the import's catalog back.

``Catalog.read_bars`` (Bar objects) and ``Catalog.read`` (a BarFrame) against the raw
``pq.read_table`` of the same files, and against NautilusTrader's ``ParquetDataCatalog.bars``.
Reads the catalog the import benchmark wrote; without it, imports the same CSV once (untimed).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from bench import gen
from bench.harness import Context, Row, faster, progress, secs, timed
from bench.import_bench import ours_import
from ntrader.catalog import Catalog


def year_catalog(ctx: Context) -> tuple[Catalog, int]:
    """The catalog the import benchmark wrote (ours) and its row count."""
    if ctx.year is None:
        progress("load: no import ran; generating and importing the CSV once (untimed)")
        csv = ctx.work / "year.csv"
        n = gen.minute_csv(csv, days=ctx.sizes.import_days)
        root = ctx.fresh_dir("load")
        ours_import(ctx, csv, root)
        ctx.year = (Catalog(root), n)
    return ctx.year


def bench_load(ctx: Context) -> None:
    catalog, n = year_catalog(ctx)
    bt = ctx.bar_type
    paths = [f.path for f in catalog.files(bt)]
    size = sum(p.stat().st_size for p in paths)
    progress(f"load: {n:,} bars in {len(paths)} file(s), {size / 1e6:.1f} MB; warming up")

    def raw() -> pa.Table:
        tables = [pq.read_table(p) for p in paths]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def nautilus() -> list[Any]:
        return ParquetDataCatalog(str(catalog.root)).bars([str(bt)])

    for fn in (raw, lambda: catalog.read_bars(bt), nautilus):
        fn()
    progress(f"load: pyarrow read_table / Catalog.read_bars / Catalog.read x{ctx.reps}")
    t_raw, table = timed(raw, ctx.reps)
    t_bars, bars = timed(lambda: catalog.read_bars(bt), ctx.reps)
    t_frame, frame = timed(lambda: catalog.read(bt), ctx.reps)
    progress(f"load: ParquetDataCatalog.bars x{ctx.reps}")
    t_naut, naut_bars = timed(nautilus, ctx.reps)

    ratio = t_bars.best / t_raw.best
    ctx.add(
        Row(
            "load",
            f"load: Catalog.read_bars ({n:,} Bar objects) vs pq.read_table",
            secs(t_bars.best),
            secs(t_raw.best),
            f"{ratio:.2f}x raw",
            "≤ 2x raw",
            ratio <= 2,
            {"ours_s": t_bars.runs, "raw_s": t_raw.runs, "ratio": ratio},
            probe=lambda: catalog.read_bars(bt),
        )
    )
    ctx.add(
        Row(
            "load",
            "load: Catalog.read (BarFrame, no Bar objects) vs pq.read_table",
            secs(t_frame.best),
            secs(t_raw.best),
            f"{t_frame.best / t_raw.best:.2f}x raw",
            "—",
            None,
            {"ours_s": t_frame.runs, "raw_s": t_raw.runs},
        )
    )
    ctx.add(
        Row(
            "load",
            "load: Catalog.read_bars vs ParquetDataCatalog.bars (Nautilus)",
            secs(t_bars.best),
            secs(t_naut.best),
            faster(t_bars.best, t_naut.best),
            "—",
            None,
            {"ours_s": t_bars.runs, "nautilus_s": t_naut.runs},
        )
    )
    sample = range(0, n, max(1, n // 1000))
    same = len(bars) == len(naut_bars) == len(frame) == table.num_rows == n and all(
        str(bars[i]) == str(naut_bars[i]) for i in [*sample, n - 1]
    )
    ctx.results.check(
        same,
        f"load: read_bars {len(bars):,}, Nautilus bars() {len(naut_bars):,}, "
        f"read {len(frame):,}, raw {table.num_rows:,} rows; {len(sample) + 1} sampled Bars "
        "identical (str) to Nautilus'",
    )

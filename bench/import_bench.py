"""The import benchmark of ``bench/run.py``: a 1-minute CSV into a catalog.

Ours is ``import_csv``; the reference is the tutorial path (pandas -> ``BarDataWrangler`` ->
``ParquetDataCatalog.write_data``). Both catalogs must hold the same bars. The catalog ours wrote
is kept on the context (``ctx.year``) for the load benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler

from bench import gen
from bench.harness import Context, Row, faster, per_s, progress, secs, timed
from ntrader.catalog import BarFrame, Catalog
from ntrader.catalog.codec import table_to_frame
from ntrader.importing import import_csv
from ntrader.instruments import make_equity


def reference_import(ctx: Context, csv: Path, root: Path) -> list[Any]:
    """The tutorial path: pandas -> BarDataWrangler -> ParquetDataCatalog.write_data."""
    df = pd.read_csv(csv)
    # Labelled by the bar close (what ntrader stores), so both catalogs hold the same bars.
    df.index = pd.DatetimeIndex(
        pd.to_datetime(df.pop("timestamp"), utc=True) + np.timedelta64(1, "m"),
        name="timestamp",
    )
    instrument = make_equity(ctx.iid, 2)
    bars = BarDataWrangler(ctx.bar_type, instrument).process(df)
    catalog = ParquetDataCatalog(str(root))
    catalog.write_data([instrument])
    catalog.write_data(bars)
    return bars


def ours_import(ctx: Context, csv: Path, root: Path) -> Any:
    return import_csv(Catalog(root), csv, ctx.iid, ctx.bar_type, mode="skip")


def read_raw_frame(directory: Path) -> BarFrame:
    """Every ``*.parquet`` of a bar-type directory (any file naming), sorted by ts_event."""
    frames = [table_to_frame(pq.read_table(p)) for p in sorted(directory.glob("*.parquet"))]
    frame = BarFrame.concat(frames)
    return frame.take(np.argsort(frame.ts_event, kind="stable"))


def bench_import(ctx: Context) -> None:
    days = ctx.sizes.import_days
    progress(f"import: generating a {days}-day 24x7 1-minute CSV")
    csv = ctx.work / "year.csv"
    n = gen.minute_csv(csv, days=days)
    progress(f"import: {n:,} rows, {csv.stat().st_size / 1e6:.1f} MB; warming up")
    small = ctx.work / "warm.csv"
    gen.minute_csv(small, days=1, seed=9)
    ours_import(ctx, small, ctx.fresh_dir("warm-ours"))
    reference_import(ctx, small, ctx.fresh_dir("warm-ref"))

    roots: list[Path] = []

    def fresh(stem: str) -> Callable[[], tuple[Any, ...]]:
        def setup() -> tuple[Any, ...]:
            roots.append(ctx.fresh_dir(stem))
            return ctx, csv, roots[-1]

        return setup

    progress(f"import: ours (import_csv) x{ctx.reps}")
    ours, report = timed(ours_import, ctx.reps, fresh("import-ours"))
    ours_root = roots[-1]
    progress(f"import: reference (pandas + BarDataWrangler + write_data) x{ctx.reps}")
    ref, ref_bars = timed(reference_import, ctx.reps, fresh("import-ref"))
    ref_root = roots[-1]
    ctx.year = (Catalog(ours_root), n)

    speedup = ref.best / ours.best
    ctx.add(
        Row(
            "import",
            f"import: {n:,}-row 1-min CSV -> catalog",
            secs(ours.best),
            secs(ref.best),
            faster(ours.best, ref.best),
            "≥ 10x faster",
            speedup >= 10,
            {"rows": n, "ours_s": ours.runs, "reference_s": ref.runs, "speedup": speedup},
            probe=lambda: ours_import(ctx, csv, ctx.fresh_dir("probe-import")),
        )
    )
    rate = n / ours.best
    ctx.add(
        Row(
            "import",
            "import: throughput",
            per_s(rate),
            per_s(n / ref.best),
            "",
            "≥ 1,000,000 rows/s",
            rate >= 1_000_000,
            {"ours_rows_per_s": rate, "reference_rows_per_s": n / ref.best},
            probe=lambda: ours_import(ctx, csv, ctx.fresh_dir("probe-import")),
        )
    )

    # Same bars in both catalogs?
    mine = Catalog(ours_root).read(ctx.bar_type)
    theirs = read_raw_frame(ref_root / "data" / "bar" / str(ctx.bar_type))
    ctx.results.check(
        report.rows_read == n and report.write.rows_added == n,
        f"import_csv read {report.rows_read:,} rows and added {report.write.rows_added:,}",
    )
    ctx.results.check(
        len(ref_bars) == n, f"BarDataWrangler produced {len(ref_bars):,} bars from {n:,} rows"
    )
    same_n = len(mine) == len(theirs) == n
    same_close = same_n and bool(np.array_equal(mine.close, theirs.close))
    same_all = same_close and all(
        np.array_equal(getattr(mine, c), getattr(theirs, c))
        for c in ("ts_event", "open", "high", "low", "volume")
    )
    ctx.results.check(
        same_n and same_close and same_all,
        f"import catalogs hold the same bars: counts ours {len(mine):,} / reference "
        f"{len(theirs):,}; closes equal: {same_close}; ts_event+OHLCV equal: {same_all}",
    )

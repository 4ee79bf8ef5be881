"""The import benchmark of ``bench/run.py``: a 1-minute CSV into a catalog.

Ours is ``import_csv``; the reference is the tutorial path (pandas -> ``BarDataWrangler`` ->
``ParquetDataCatalog.write_data``, :mod:`bench.ref_import_tutorial`). Both catalogs must hold the
same bars. The catalog ours wrote is kept on the context (``ctx.year``) for the load benchmark.

The same CSV also as WHOLE processes (interpreter, imports, Hydra, run folder — what a user waits
for): ``scripts/import_csv.py`` against ``python bench/ref_import_tutorial.py``, alternating, each
into a fresh catalog. :func:`whole_process` (wall and cpu-s of one child) is shared with the
backtest benchmark.

The nightly row: 50 files of one RTH session of 1-minute bars each, imported by ONE whole
``make import CSV='<dir>/*.csv' SYMBOL={stem}`` process, against one ``make import`` per file (a
few of them timed, extrapolated to 50); both per symbol-day.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bench import gen
from bench.harness import PY, REPO, Context, Row, faster, per_s, progress, secs, timed
from bench.ref_import_tutorial import tutorial_import
from ntrader.catalog import BarFrame, Catalog
from ntrader.catalog.codec import table_to_frame
from ntrader.importing import import_csv


def reference_import(ctx: Context, csv: Path, root: Path) -> list[Any]:
    """The tutorial path: pandas -> BarDataWrangler -> ParquetDataCatalog.write_data."""
    return tutorial_import(csv, root, str(ctx.bar_type))


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
            f"import: {n:,}-row 1-min CSV -> catalog (in-process)",
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
            "import: throughput (in-process)",
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
    bench_import_processes(ctx, csv, small, n)
    bench_nightly(ctx)


@dataclass
class Proc:
    """One finished child process: wall seconds, its cpu-s (user + system) and its stdout."""

    wall: float
    cpu: float
    stdout: str


def whole_process(args: list[str], env: dict[str, str]) -> Proc:
    """Run ``args`` from the repository root; wall clock around it, cpu-s from ``wait4``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        gc.collect()
        t0 = time.perf_counter()
        p = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"{' '.join(args)} exited {code}:\n{err.read()[-2000:]}")
        return Proc(wall, usage.ru_utime + usage.ru_stime, out.read())


def best_and_median(runs: list[float]) -> dict[str, float]:
    return {"best": min(runs), "median": statistics.median(runs)}


def bench_import_processes(ctx: Context, csv: Path, warm_csv: Path, n: int) -> None:
    """``scripts/import_csv.py`` vs the tutorial script, whole processes, alternating."""

    def cmd(side: str, path: Path, root: Path) -> list[str]:
        if side == "ours":
            return [
                PY,
                "scripts/import_csv.py",
                f"csv.path={path}",
                f"symbol={ctx.iid}",
                f"catalog.path={root}",
            ]
        return [PY, "bench/ref_import_tutorial.py", str(path), str(root), str(ctx.bar_type)]

    sides = ("ours", "tutorial")
    progress("import: whole processes, warming up on one day")
    for side in sides:
        whole_process(cmd(side, warm_csv, ctx.fresh_dir(f"warm-proc-{side}")), ctx.env)
    progress(f"import: scripts/import_csv.py vs ref_import_tutorial.py, alternating x{ctx.reps}")
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    roots: dict[str, Path] = {}
    out: dict[str, str] = {}
    for i in range(ctx.reps):
        for side in sides:
            roots[side] = ctx.fresh_dir(f"import-proc-{side}")
            proc = whole_process(cmd(side, csv, roots[side]), ctx.env)
            wall[side].append(proc.wall)
            cpu[side].append(proc.cpu)
            out[side] = proc.stdout
        progress(
            f"import: whole processes {i + 1}/{ctx.reps}: "
            + ", ".join(f"{k} {secs(v[-1])}" for k, v in wall.items())
        )
    o, r = min(wall["ours"]), min(wall["tutorial"])
    oc, rc = min(cpu["ours"]), min(cpu["tutorial"])
    ctx.add(
        Row(
            "import",
            f"import: {n:,}-row 1-min CSV -> fresh catalog, scripts/import_csv.py vs the "
            "tutorial path as a script (whole process)",
            f"{secs(o)} ({oc:.2f} cpu-s)",
            f"{secs(r)} ({rc:.2f} cpu-s)",
            f"{faster(o, r)} wall, {faster(oc, rc)} cpu",
            "—",
            None,
            {
                "rows": n,
                "ours_wall_s": wall["ours"],
                "ours_cpu_s": cpu["ours"],
                "reference_wall_s": wall["tutorial"],
                "reference_cpu_s": cpu["tutorial"],
                "ours": best_and_median(wall["ours"]),
                "reference": best_and_median(wall["tutorial"]),
                "speedup_wall": r / o,
                "speedup_cpu": rc / oc,
            },
        )
    )
    mine = len(Catalog(roots["ours"]).read(ctx.bar_type))
    theirs = len(read_raw_frame(roots["tutorial"] / "data" / "bar" / str(ctx.bar_type)))
    said = json.loads(out["tutorial"].strip().splitlines()[-1])["bars"]
    ctx.results.check(
        mine == theirs == said == n,
        f"import (whole process): catalogs hold the same number of bars: scripts/import_csv.py "
        f"{mine:,} / tutorial script {theirs:,} (it printed {said:,}) of {n:,} rows",
    )


NIGHTLY_SYMBOLS = 50
NIGHTLY_SAMPLE = 3  # separate `make import` runs timed for the reference, extrapolated to 50
NIGHTLY_TARGET_S = 0.2  # per symbol-day, the whole batch process
MAKE = ["make", "-s", "-o", ".venv/.synced", "import"]


def rth_csv(path: Path, seed: int) -> int:
    """One RTH session (2024-06-03 09:30-16:00 New York, 390 bars stamped at the open)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-06-03 09:30", periods=390, freq="1min")
    close = np.round(100 + np.cumsum(rng.normal(0, 0.05, 390)), 2)
    open_ = np.round(np.r_[close[0], close[:-1]], 2)
    frame = pd.DataFrame(
        {
            "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
            "open": open_,
            "high": np.round(np.maximum(open_, close) + rng.uniform(0, 0.1, 390), 2),
            "low": np.round(np.minimum(open_, close) - rng.uniform(0, 0.1, 390), 2),
            "close": close,
            "volume": rng.integers(100, 10_000, 390),
        }
    )
    frame.to_csv(path, index=False, float_format="%.2f")
    return len(frame)


def make_env(ctx: Context) -> dict[str, str]:
    """The bench's environment without the calling make's flags and variables (``make bench``
    passes its ``ARGS`` down through ``MAKEFLAGS``)."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ARGS", "CSV", "SYMBOL", "RUNS"}
    return {k: v for k, v in ctx.env.items() if k not in drop and not k.startswith("NTRADER_")}


def make_import(ctx: Context, csv: str, symbol: str, catalog: Path) -> None:
    runs = f"RUNS={ctx.work / 'runs'}"
    args = [*MAKE, f"CSV={csv}", f"SYMBOL={symbol}", f"CATALOG={catalog}", runs]
    proc = subprocess.run(args, cwd=REPO, env=make_env(ctx), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")


def bench_nightly(ctx: Context) -> None:
    """50 one-session files: one batch process vs one `make import` per file."""
    if shutil.which("make") is None:
        progress("import: nightly batch skipped (no make on PATH)")
        return
    incoming = ctx.fresh_dir("nightly")
    incoming.mkdir()
    rows = sum(rth_csv(incoming / f"SYM{i:03d}.csv", seed=i) for i in range(NIGHTLY_SYMBOLS))
    pattern = os.path.join(incoming, "*.csv")
    roots: list[Path] = []

    def fresh() -> tuple[Any, ...]:
        roots.append(ctx.fresh_dir("nightly-catalog"))
        return (roots[-1],)

    progress(f"import: nightly batch of {NIGHTLY_SYMBOLS} files, one make import x{ctx.reps}")
    batch, _ = timed(lambda root: make_import(ctx, pattern, "{stem}", root), ctx.reps, fresh)
    batch_root = roots[-1]
    progress(f"import: {NIGHTLY_SAMPLE} separate make import runs x{ctx.reps} (extrapolated)")

    def separate(root: Path) -> None:
        for i in range(NIGHTLY_SAMPLE):
            make_import(ctx, str(incoming / f"SYM{i:03d}.csv"), f"SYM{i:03d}", root)

    sep, _ = timed(separate, ctx.reps, fresh)
    ours = batch.best / NIGHTLY_SYMBOLS
    ref = sep.best / NIGHTLY_SAMPLE
    ctx.add(
        Row(
            "import",
            f"import: nightly {NIGHTLY_SYMBOLS} files x 1 RTH session, one "
            "`make import CSV='dir/*.csv' SYMBOL={stem}` vs one `make import` per file "
            "(per symbol-day, whole processes)",
            secs(ours),
            secs(ref),
            faster(ours, ref),
            f"≤ {NIGHTLY_TARGET_S} s per symbol-day",
            ours <= NIGHTLY_TARGET_S,
            {
                "files": NIGHTLY_SYMBOLS,
                "rows": rows,
                "batch_s": batch.runs,
                "separate_sample": NIGHTLY_SAMPLE,
                "separate_s": sep.runs,
                "batch_per_symbol_day_s": ours,
                "separate_per_symbol_day_s": ref,
            },
        )
    )
    held = Catalog(batch_root)
    counts = [len(held.read(bt)) for bt in held.bar_types()]
    ctx.results.check(
        len(counts) == NIGHTLY_SYMBOLS and all(n == 390 for n in counts),
        f"the nightly batch wrote {len(counts)} bar types of {sorted(set(counts))} bars "
        f"(expected {NIGHTLY_SYMBOLS} of 390)",
    )

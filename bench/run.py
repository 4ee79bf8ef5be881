"""ntrader benchmarks, each side by side with its reference path, in one process.

    python bench/run.py                      # everything (~5 min on 2 cores)
    python bench/run.py --only import,load   # a selection of: import, load, scan, scale,
                                             #   check, backtest, sweep, launchers, fetch,
                                             #   migrate
    python bench/run.py --quick              # small inputs, a smoke run
    python bench/run.py --profile            # cProfile our side of every missed target

Each timed thing is the best of ``--reps`` (3) repetitions after a warm-up. The markdown table goes
to stdout and to ``bench/out/results.md`` (all repetitions in ``bench/out/results.json``); progress
goes to stderr. Generated inputs live in a temp dir (never ``data/catalog``). Targets are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Imports are warmed here, before anything is timed.
import exchange_calendars as xc
import nautilus_trader
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger
from nautilus_trader.model.data import BarType
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler

import backtest_bench as btb
import fetch_bench as fb
import gen
import migrate_bench as mb
import sweep_launcher_bench as slb
from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.catalog.codec import table_to_frame
from ntrader.catalog.inventory import list_catalog
from ntrader.importing.importer import import_csv
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id
from ntrader.quality.checkup import check_bar_type
from ntrader.sessions import clear_calendar_cache

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
PY = sys.executable
BENCHES = (
    "import",
    "load",
    "scan",
    "scale",
    "check",
    "backtest",
    "sweep",
    "launchers",
    "fetch",
    "migrate",
)
MINUTE_NS = 60_000_000_000
STARTUP = "scripts/scan.py format=json on an empty catalog"


def progress(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ timing


@dataclass
class Timing:
    best: float
    runs: list[float]


def timed(
    fn: Callable[..., Any], reps: int, setup: Callable[[], tuple[Any, ...]] | None = None
) -> tuple[Timing, Any]:
    """Best of ``reps`` runs of ``fn(*setup())`` (setup untimed); returns the last result."""
    runs: list[float] = []
    result: Any = None
    for _ in range(reps):
        args = setup() if setup else ()
        result = None  # free the previous result before the next run
        gc.collect()
        t0 = time.perf_counter()
        result = fn(*args)
        runs.append(time.perf_counter() - t0)
    return Timing(min(runs), runs), result


def run_cmd(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc


# ------------------------------------------------------------------------------------ results


@dataclass
class Row:
    bench: str
    name: str
    ours: str
    reference: str
    ratio: str
    target: str
    met: bool | None  # None = context only, no target
    data: dict[str, Any] = field(default_factory=dict)
    probe: Callable[[], Any] | None = field(default=None, repr=False)  # one run of our side
    probe_cmd: list[str] | None = field(default=None, repr=False)  # ... or our subprocess


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)

    def check(self, ok: bool, text: str) -> None:
        line = f"{'OK' if ok else 'MISMATCH'}: {text}"
        self.checks.append(line)
        progress(f"check {line}")


def secs(t: float) -> str:
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def faster(ours: float, reference: float) -> str:
    r = reference / ours
    return f"{r:.1f}x faster" if r >= 1 else f"{1 / r:.1f}x slower"


def clock_time(t: float) -> str:
    """A simulated duration: seconds below a minute, else minutes."""
    return f"{t:.1f} s" if t < 60 else f"{t / 60:.1f} min"


def per_s(n: float) -> str:
    return f"{n:,.0f} rows/s"


def markdown(results: Results, header: str) -> str:
    lines = [
        header,
        "",
        "| benchmark | ours | reference | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for r in results.rows:
        met = "—" if r.met is None else ("yes" if r.met else "**NO**")
        lines.append(f"| {r.name} | {r.ours} | {r.reference} | {r.ratio} | {r.target} | {met} |")
    if results.checks:
        lines += ["", "Correctness checks:", ""] + [f"- {c}" for c in results.checks]
    for name, text in results.profiles.items():
        how = "cumulative, project code only" if "subprocess" in name else "own time"
        lines += ["", f"cProfile of `{name}` (ours, one run, by {how}):", "", "```", text, "```"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class Sizes:
    import_days: int
    scan_instruments: int
    scale_instruments: tuple[int, int]  # scan growth, local disk and S3
    scan_days: tuple[dt.date, dt.date]
    check_range: tuple[dt.date, dt.date]
    check_drop_sessions: int
    check_drop_runs: int
    backtest_range: tuple[dt.date, dt.date]  # the one-symbol catalog of backtest and sweep
    sweep_ends: tuple[dt.date, dt.date]  # dates.end of the sweep (x 2 fast x 2 slow EMAs)
    fetch_range: tuple[dt.date, dt.date]  # RTH 1-min bars of one symbol from the TWS simulator
    migrate_rows: int  # 1-min rows per symbol of the legacy PostgreSQL table (x 10 symbols)


FULL = Sizes(
    import_days=366,  # 2024 is a leap year: 527,040 rows
    scan_instruments=500,
    scale_instruments=(500, 5000),
    scan_days=(dt.date(2024, 3, 4), dt.date(2024, 3, 6)),
    check_range=(dt.date(2019, 1, 2), dt.date(2023, 12, 29)),
    check_drop_sessions=6,
    check_drop_runs=12,
    backtest_range=(dt.date(2024, 1, 1), dt.date(2024, 12, 31)),  # 252 sessions, 97,740 bars
    sweep_ends=(dt.date(2024, 6, 28), dt.date(2024, 12, 31)),
    fetch_range=(dt.date(2024, 1, 1), dt.date(2024, 12, 31)),  # 252 sessions
    migrate_rows=500_000,  # 5M rows; the doubled table 10M
)
QUICK = Sizes(
    import_days=14,
    scan_instruments=40,
    scale_instruments=(20, 200),
    scan_days=(dt.date(2024, 3, 4), dt.date(2024, 3, 5)),
    check_range=(dt.date(2023, 10, 2), dt.date(2023, 12, 29)),
    check_drop_sessions=3,
    check_drop_runs=4,
    backtest_range=(dt.date(2024, 1, 1), dt.date(2024, 2, 29)),
    sweep_ends=(dt.date(2024, 1, 31), dt.date(2024, 2, 29)),
    fetch_range=(dt.date(2024, 1, 1), dt.date(2024, 3, 31)),  # 61 sessions: one 10-min wait
    migrate_rows=50_000,
)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.reps: int = args.reps
        self.sizes = QUICK if args.quick else FULL
        self.work = work
        self.results = Results()
        self.env = {**os.environ, "NTRADER_RUNS": str(work / "runs")}
        self.env.pop("NAUTILUS_PATH", None)
        self.iid = resolve_instrument_id("SYN.NASDAQ")
        self.bar_type = bar_type_for(self.iid, "1-MINUTE-LAST")
        self._counter = 0
        self._year: tuple[Catalog, int] | None = None  # the catalog the import wrote (ours)
        self._startup: dict[str, Timing] = {}
        self._bt: tuple[Path, str, int] | None = None  # backtest catalog root, bar type, bars
        self.profile_top: int = args.top if args.profile else 0

    def fresh_dir(self, stem: str) -> Path:
        self._counter += 1
        return self.work / f"{stem}-{self._counter}"

    def add(self, row: Row) -> None:
        self.results.rows.append(row)
        met = "" if row.met is None else f" (target {row.target}: {'met' if row.met else 'MISSED'})"
        progress(f"{row.name}: ours {row.ours} | ref {row.reference} | {row.ratio}{met}")

    # -------------------------------------------------------------------------------- import
    def _reference_import(self, csv: Path, root: Path) -> list[Any]:
        """The tutorial path: pandas -> BarDataWrangler -> ParquetDataCatalog.write_data."""
        df = pd.read_csv(csv)
        # Labelled by the bar close (what ntrader stores), so both catalogs hold the same bars.
        df.index = pd.DatetimeIndex(
            pd.to_datetime(df.pop("timestamp"), utc=True) + np.timedelta64(1, "m"),
            name="timestamp",
        )
        instrument = make_equity(self.iid, 2)
        bars = BarDataWrangler(self.bar_type, instrument).process(df)
        catalog = ParquetDataCatalog(str(root))
        catalog.write_data([instrument])
        catalog.write_data(bars)
        return bars

    def _ours_import(self, csv: Path, root: Path) -> Any:
        return import_csv(Catalog(root), csv, self.iid, self.bar_type, mode="skip")

    def bench_import(self) -> None:
        days = self.sizes.import_days
        progress(f"import: generating a {days}-day 24x7 1-minute CSV")
        csv = self.work / "year.csv"
        n = gen.minute_csv(csv, days=days)
        progress(f"import: {n:,} rows, {csv.stat().st_size / 1e6:.1f} MB; warming up")
        small = self.work / "warm.csv"
        gen.minute_csv(small, days=1, seed=9)
        self._ours_import(small, self.fresh_dir("warm-ours"))
        self._reference_import(small, self.fresh_dir("warm-ref"))

        roots: list[Path] = []

        def fresh(stem: str) -> Callable[[], tuple[Any, ...]]:
            def setup() -> tuple[Any, ...]:
                roots.append(self.fresh_dir(stem))
                return csv, roots[-1]

            return setup

        progress(f"import: ours (import_csv) x{self.reps}")
        ours, report = timed(self._ours_import, self.reps, fresh("import-ours"))
        ours_root = roots[-1]
        progress(f"import: reference (pandas + BarDataWrangler + write_data) x{self.reps}")
        ref, ref_bars = timed(self._reference_import, self.reps, fresh("import-ref"))
        ref_root = roots[-1]
        self._year = (Catalog(ours_root), n)

        speedup = ref.best / ours.best
        self.add(
            Row(
                "import",
                f"import: {n:,}-row 1-min CSV -> catalog",
                secs(ours.best),
                secs(ref.best),
                faster(ours.best, ref.best),
                "≥ 10x faster",
                speedup >= 10,
                {"rows": n, "ours_s": ours.runs, "reference_s": ref.runs, "speedup": speedup},
                probe=lambda: self._ours_import(csv, self.fresh_dir("probe-import")),
            )
        )
        rate = n / ours.best
        self.add(
            Row(
                "import",
                "import: throughput",
                per_s(rate),
                per_s(n / ref.best),
                "",
                "≥ 1,000,000 rows/s",
                rate >= 1_000_000,
                {"ours_rows_per_s": rate, "reference_rows_per_s": n / ref.best},
                probe=lambda: self._ours_import(csv, self.fresh_dir("probe-import")),
            )
        )

        # Same bars in both catalogs?
        mine = Catalog(ours_root).read(self.bar_type)
        theirs = _read_raw_frame(ref_root / "data" / "bar" / str(self.bar_type))
        self.results.check(
            report.rows_read == n and report.write.rows_added == n,
            f"import_csv read {report.rows_read:,} rows and added {report.write.rows_added:,}",
        )
        self.results.check(
            len(ref_bars) == n, f"BarDataWrangler produced {len(ref_bars):,} bars from {n:,} rows"
        )
        same_n = len(mine) == len(theirs) == n
        same_close = same_n and bool(np.array_equal(mine.close, theirs.close))
        same_all = same_close and all(
            np.array_equal(getattr(mine, c), getattr(theirs, c))
            for c in ("ts_event", "open", "high", "low", "volume")
        )
        self.results.check(
            same_n and same_close and same_all,
            f"import catalogs hold the same bars: counts ours {len(mine):,} / reference "
            f"{len(theirs):,}; closes equal: {same_close}; ts_event+OHLCV equal: {same_all}",
        )

    # -------------------------------------------------------------------------------- load
    def year_catalog(self) -> tuple[Catalog, int]:
        if self._year is None:
            progress("load: no import ran; generating and importing the CSV once (untimed)")
            csv = self.work / "year.csv"
            n = gen.minute_csv(csv, days=self.sizes.import_days)
            root = self.fresh_dir("load")
            self._ours_import(csv, root)
            self._year = (Catalog(root), n)
        return self._year

    def bench_load(self) -> None:
        catalog, n = self.year_catalog()
        bt = self.bar_type
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
        progress(f"load: pyarrow read_table / Catalog.read_bars / Catalog.read x{self.reps}")
        t_raw, table = timed(raw, self.reps)
        t_bars, bars = timed(lambda: catalog.read_bars(bt), self.reps)
        t_frame, frame = timed(lambda: catalog.read(bt), self.reps)
        progress(f"load: ParquetDataCatalog.bars x{self.reps}")
        t_naut, naut_bars = timed(nautilus, self.reps)

        ratio = t_bars.best / t_raw.best
        self.add(
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
        self.add(
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
        self.add(
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
        self.results.check(
            same,
            f"load: read_bars {len(bars):,}, Nautilus bars() {len(naut_bars):,}, "
            f"read {len(frame):,}, raw {table.num_rows:,} rows; {len(sample) + 1} sampled Bars "
            "identical (str) to Nautilus'",
        )

    # -------------------------------------------------------------------------------- startup
    def startup(self) -> Timing:
        """Start-up references (subprocesses), measured once; returns the one nets subtract.

        That one is ``scripts/scan.py`` on an EMPTY catalog: interpreter, imports, Hydra config,
        run folder, logging and ``summary.json`` — everything but the work itself.
        """
        if not self._startup:
            progress(f"start-up references x{self.reps}")
            empty = self.fresh_dir("empty-catalog")
            empty.mkdir()
            cmds = {
                "python -c 'import ntrader.catalog.catalog, hydra'": [
                    PY,
                    "-c",
                    "import ntrader.catalog.catalog, hydra",
                ],
                "scripts/scan.py --help": [PY, "scripts/scan.py", "--help"],
                STARTUP: [PY, "scripts/scan.py", f"catalog.path={empty}", "format=json"],
            }
            run_cmd(cmds[STARTUP], self.env)  # warm the OS file cache
            for name, cmd in cmds.items():
                self._startup[name], _ = timed(lambda c=cmd: run_cmd(c, self.env), self.reps)
            for name, t in self._startup.items():
                self.add(
                    Row(
                        "startup",
                        f"start-up: {name}",
                        secs(t.best),
                        "",
                        "",
                        "—",
                        None,
                        {"s": t.runs},
                    )
                )
        return self._startup[STARTUP]

    # -------------------------------------------------------------------------------- scan
    def bench_scan(self) -> None:
        k = self.sizes.scan_instruments
        first, last = self.sizes.scan_days
        progress(f"scan: writing {k} instruments ({first} .. {last} RTH 1-min) with write_bars")
        t0 = time.perf_counter()
        catalog, total = gen.scan_catalog(
            self.fresh_dir("scan"), instruments=k, first_day=first, last_day=last
        )
        progress(f"scan: {k} bar types, {total:,} bars written in {time.perf_counter() - t0:.1f} s")

        def scan() -> list[Any]:
            return list_catalog(Catalog(catalog.root))

        scan()
        t_scan, avail = timed(scan, self.reps)
        self.add(
            Row(
                "scan",
                f"scan: list_catalog, {k} bar types (in-process)",
                secs(t_scan.best),
                "",
                f"{t_scan.best / k * 1000:.2f} ms/bar type",
                "≤ 1 s",
                t_scan.best <= 1.0,
                {"s": t_scan.runs, "bar_types": k},
                probe=scan,
            )
        )
        self.results.check(
            len(avail) == k and sum(a.rows for a in avail) == total,
            f"scan: list_catalog found {len(avail)} bar types, {sum(a.rows for a in avail):,} rows",
        )

        start = self.startup()
        cmd = [PY, "scripts/scan.py", f"catalog.path={catalog.root}", "format=json"]
        progress(f"scan: scripts/scan.py subprocess x{self.reps}")
        t_sub, proc = timed(lambda: run_cmd(cmd, self.env), self.reps)
        net = t_sub.best - start.best
        self.add(
            Row(
                "scan",
                f"scan: scripts/scan.py format=json, {k} bar types (subprocess)",
                secs(t_sub.best),
                f"{secs(start.best)} (empty catalog)",
                f"net {secs(net)}",
                "net ≤ 1 s",
                net <= 1.0,
                {"s": t_sub.runs, "startup_s": start.runs, "net_s": net},
                probe_cmd=cmd,
            )
        )
        listed = json.loads(proc.stdout)
        self.results.check(
            len(listed) == k, f"scan: scripts/scan.py listed {len(listed)} bar types"
        )

    # -------------------------------------------------------------------------------- scale
    def bench_scale(self) -> None:
        """make scan at 500 and 5,000 instruments, local disk and a local S3 server."""
        import scale_bench

        small, big = self.sizes.scale_instruments
        m = scale_bench.measure(self, (small, big))
        for where, label in (("local", "local disk"), ("s3", "S3 (moto server, loopback)")):
            for kind, what in (
                ("script", "scripts/scan.py format=json"),
                ("inproc", "list_catalog"),
            ):
                t_small, _ = m[where][small][kind]
                t_big, runs = m[where][big][kind]
                growth = t_big / t_small
                # linear = the cost per bar type does not grow (20% allowed for timing noise)
                per_type = (t_big / big) / (t_small / small)
                local_script = where == "local" and kind == "script"
                target = "cost per bar type ≤ 1.2x (linear or better)" + (
                    " and ≤ 3 s" if local_script else ""
                )
                met = per_type <= 1.2 and (t_big <= 3.0 if local_script else True)
                self.add(
                    Row(
                        "scale",
                        f"scan {small:,} → {big:,} instruments, {label}: {what}",
                        secs(t_big),
                        f"{secs(t_small)} at {small:,}",
                        f"{growth:.1f}x for {big / small:.0f}x instruments "
                        f"({per_type:.2f}x per bar type)",
                        target,
                        met,
                        {"s": runs, f"s_{small}": m[where][small][kind][1]},
                    )
                )

    # -------------------------------------------------------------------------------- check
    def bench_check(self) -> None:
        s = self.sizes
        start, end = s.check_range
        progress(f"check: writing RTH 1-min bars {start} .. {end} (XNYS) with gaps")
        t0 = time.perf_counter()
        data = gen.check_catalog(
            self.fresh_dir("check"),
            start=start,
            end=end,
            drop_sessions=s.check_drop_sessions,
            drop_runs=s.check_drop_runs,
        )
        progress(
            f"check: {data.bars_written:,} bars over {data.sessions} sessions in {data.files} "
            f"files ({time.perf_counter() - t0:.1f} s); dropped sessions "
            f"{', '.join(map(str, data.dropped_sessions))}; {data.intraday_runs} intraday runs"
        )
        catalog = data.catalog
        bt = BarType.from_str(f"{data.symbol}-1-MINUTE-LAST-EXTERNAL")

        def check() -> Any:
            return check_bar_type(catalog, bt, start=start, end=end)

        def cold_check() -> Any:
            clear_calendar_cache()
            # exchange_calendars keeps its own cache of built calendars (import stays warm).
            getattr(
                xc.calendar_utils.global_calendar_dispatcher, "_factory_output_cache", {}
            ).clear()
            return check()

        check()
        t_warm, report = timed(check, self.reps)
        t_cold, _ = timed(cold_check, self.reps)
        years = (end - start).days / 365.25
        label = f"{years:.0f} years" if years >= 1 else f"{(end - start).days} days"
        self.add(
            Row(
                "check",
                f"check: check_bar_type, {label} RTH 1-min (calendar cached)",
                secs(t_warm.best),
                "",
                f"{data.bars_written / t_warm.best:,.0f} bars/s",
                "≤ 0.5 s",
                t_warm.best <= 0.5,
                {"s": t_warm.runs, "bars": data.bars_written},
                probe=check,
            )
        )
        self.add(
            Row(
                "check",
                "check: same, calendar built cold (import warm)",
                secs(t_cold.best),
                "",
                f"calendar build ≈ {secs(t_cold.best - t_warm.best)}",
                "≤ 0.5 s",
                t_cold.best <= 0.5,
                {"s": t_cold.runs},
                probe=cold_check,
            )
        )
        g = report.gaps
        ok = (
            g.sessions_expected == data.sessions
            and g.sessions_missing == len(data.dropped_sessions)
            and len(g.missing_sessions) == data.missing_session_ranges
            and len(g.intraday_gaps) == data.intraday_runs
            and g.bars_present == data.bars_written
            and g.bars_missing == data.bars_expected - data.bars_written
        )
        self.results.check(
            ok,
            f"check: {g.sessions_present}/{g.sessions_expected} sessions, "
            f"{len(g.missing_sessions)} missing-session ranges (expected "
            f"{data.missing_session_ranges}), {len(g.intraday_gaps)} intraday gaps (expected "
            f"{data.intraday_runs}), {g.bars_present:,}/{g.bars_expected:,} bars, "
            f"{len(report.health)} health issue(s)",
        )

        startup = self.startup()
        cmd = [
            PY,
            "scripts/scan.py",
            f"symbol={data.symbol}",
            f"catalog.path={catalog.root}",
            f"start={start}",
            f"end={end}",
            "format=json",
        ]
        progress(f"check: scripts/scan.py symbol=… subprocess x{self.reps}")
        t_sub, proc = timed(lambda: run_cmd(cmd, self.env), self.reps)
        net = t_sub.best - startup.best
        self.add(
            Row(
                "check",
                f"check: scripts/scan.py symbol={data.symbol} (subprocess)",
                secs(t_sub.best),
                f"{secs(startup.best)} (empty catalog)",
                f"net {secs(net)}",
                "net ≤ 0.5 s",
                net <= 0.5,
                {"s": t_sub.runs, "startup_s": startup.runs, "net_s": net},
                probe_cmd=cmd,
            )
        )
        out = json.loads(proc.stdout)
        self.results.check(
            len(out["gaps"]) == data.missing_session_ranges + data.intraday_runs,
            f"check: scripts/scan.py listed {len(out['gaps'])} gaps",
        )

    # -------------------------------------------------------------------------------- backtest
    def backtest_catalog(self) -> tuple[Path, str, int]:
        """One symbol's RTH 1-minute bars over ``sizes.backtest_range`` (shared with sweep)."""
        if self._bt is None:
            first, last = self.sizes.backtest_range
            progress(f"backtest: writing {first} .. {last} RTH 1-min bars of one symbol (XNYS)")
            root = self.fresh_dir("backtest")
            _, bar_type, n = gen.backtest_catalog(root, start=first, end=last)
            self._bt = (root, bar_type, n)
        return self._bt

    def bench_backtest(self) -> None:
        first, last = self.sizes.backtest_range
        root, bar_type, n = self.backtest_catalog()
        spec = btb.spec_for(bar_type, first, last)
        names = ("ours", "bare", "bare+analysis")

        def run_side(name: str, r: Path, sp: Any) -> btb.Outcome:
            if name == "ours":
                return btb.ours(r, sp)
            return btb.bare(r, bar_type, run_analysis=name == "bare+analysis")

        progress("backtest: warming up the three sides on one week")
        warm_first, warm_last = dt.date(2024, 1, 2), dt.date(2024, 1, 8)
        warm = self.fresh_dir("backtest-warm")
        gen.backtest_catalog(warm, start=warm_first, end=warm_last)
        for name in names:
            run_side(name, warm, btb.spec_for(bar_type, warm_first, warm_last)).dispose()

        # Interleaved (ours, bare, bare+analysis per repetition): a shared machine's load
        # changes hit the three sides alike.
        runs: dict[str, list[float]] = {k: [] for k in names}
        phases: dict[str, dict[str, float]] = {}  # of each side's best run
        last_run: dict[str, btb.Outcome] = {}
        for i in range(self.reps):
            for name in names:
                if name in last_run:
                    last_run.pop(name).dispose()
                gc.collect()
                t0 = time.perf_counter()
                out = run_side(name, root, spec)
                runs[name].append(time.perf_counter() - t0)
                last_run[name] = out
                if runs[name][-1] == min(runs[name]):
                    phases[name] = dict(out.phases)
            progress(
                f"backtest: repetition {i + 1}/{self.reps}: "
                + ", ".join(f"{k} {secs(v[-1])}" for k, v in runs.items())
            )
        best = {k: min(v) for k, v in runs.items()}
        o, b, ba = best["ours"], best["bare"], best["bare+analysis"]
        label = f"{n:,} RTH 1-min bars ({first.year}, 1 symbol), EMACrossLongOnly"
        self.add(
            Row(
                "backtest",
                f"backtest: ours end-to-end vs bare engine without analysis, {label}",
                secs(o),
                f"{secs(b)} (run_analysis=False)",
                f"{o / b:.2f}x bare",
                "≤ 1.05x",
                o / b <= 1.05,
                {"ours_s": runs["ours"], "bare_s": runs["bare"], "ratio": o / b},
                probe=lambda: btb.ours(root, spec),
            )
        )
        self.add(
            Row(
                "backtest",
                "backtest: ours vs bare engine with run_analysis=True (Nautilus default)",
                secs(o),
                f"{secs(ba)} (run_analysis=True)",
                f"{faster(o, ba)} ({o / ba:.2f}x)",
                "≥ 1.5x faster (stretch)",
                ba / o >= 1.5,
                {"ours_s": runs["ours"], "bare_analysis_s": runs["bare+analysis"], "ratio": o / ba},
                probe=lambda: btb.ours(root, spec),
            )
        )
        ref_phases = phases["bare+analysis"]
        self.add(
            Row(
                "backtest",
                "backtest: where the time goes (best runs)",
                " · ".join(f"{k} {secs(v)}" for k, v in phases["ours"].items()),
                "bare+analysis: " + " · ".join(f"{k} {secs(v)}" for k, v in ref_phases.items()),
                "",
                "—",
                None,
                {"ours": phases["ours"], "bare": phases["bare"], "bare+analysis": ref_phases},
            )
        )

        mine, ref, plain = last_run["ours"], last_run["bare+analysis"], last_run["bare"]
        ok, text = btb.compare(mine, ref)
        self.results.check(ok, f"backtest: ours vs bare+analysis: {text}")
        iters = {k: int(v.engine.iteration) for k, v in last_run.items()}
        same_plain = btb.fills(plain) == (mine.summary or {}).get("fills") and btb.account_pnl(
            plain
        ) == (mine.summary or {}).get("pnl")
        self.results.check(
            same_plain and set(iters.values()) == {n},
            f"backtest: bare (no analysis) has the same fills and account PnL as ours: "
            f"{same_plain}; bars processed {iters} of {n:,} written",
        )
        for out in last_run.values():
            out.dispose()

    # -------------------------------------------------------------------------------- sweep
    def bench_sweep(self) -> None:
        root, bar_type, n = self.backtest_catalog()
        symbol = bar_type.split("-", 1)[0]
        fast, slow = "5,10", "20,30"
        ends = ",".join(str(d) for d in self.sizes.sweep_ends)
        progress("sweep: warming the OS file cache (scripts/backtest.py --help)")
        run_cmd([PY, "scripts/backtest.py", "--help"], self.env)
        walls: dict[int, float] = {}
        rows: dict[int, list[dict[str, str]]] = {}
        for jobs in (1, 2):
            runs_root = self.fresh_dir(f"sweep-runs-{jobs}")
            env = {**self.env, "NTRADER_RUNS": str(runs_root)}
            cmd = btb.sweep_cmd(PY, root, symbol, fast, slow, ends, jobs=jobs)
            how = "basic launcher (sequential)" if jobs == 1 else f"joblib n_jobs={jobs}"
            progress(f"sweep: 8 jobs, {how}, 1 run")
            t0 = time.perf_counter()
            run_cmd(cmd, env)
            walls[jobs] = time.perf_counter() - t0
            rows[jobs] = btb.sweep_rows(runs_root)
            progress(f"sweep: {how}: {secs(walls[jobs])}")
        seq, par = walls[1], walls[2]
        k = len(rows[1])
        first = self.sizes.backtest_range[0]
        self.add(
            Row(
                "sweep",
                f"sweep: {k} configs (EMA fast {fast} x slow {slow} x end {ends}; {n:,} bars "
                f"from {first}), scripts/backtest.py -m, joblib n_jobs=2 vs basic launcher, 1 run",
                secs(par),
                f"{secs(seq)} (sequential)",
                f"{par / seq:.3f}x sequential",
                "≤ 0.6x",
                par / seq <= 0.6,
                {"joblib_s": par, "sequential_s": seq, "ratio": par / seq},
            )
        )

        def in_job(r: list[dict[str, str]]) -> float:
            return sum(float(x["duration_s"] or 0) for x in r) / max(1, len(r))

        self.add(
            Row(
                "sweep",
                f"sweep: per job (wall / {k}; mean in-job duration_s in brackets)",
                f"{secs(par / k)} ({secs(in_job(rows[2]))})",
                f"{secs(seq / k)} ({secs(in_job(rows[1]))})",
                "",
                "—",
                None,
                {"joblib_per_job_s": par / k, "sequential_per_job_s": seq / k},
            )
        )

        ok_counts = {j: sum(r.get("status") == "ok" for r in rows[j]) for j in rows}
        pnl_seq, pnl_par = btb.pnl_by_overrides(rows[1]), btb.pnl_by_overrides(rows[2])
        same = pnl_seq == pnl_par and len(pnl_seq) == 8
        self.results.check(
            all(len(r) == 8 for r in rows.values()) and set(ok_counts.values()) == {8} and same,
            f"sweep: sweep_summary.csv rows ok: sequential {ok_counts[1]}/{len(rows[1])}, "
            f"joblib {ok_counts[2]}/{len(rows[2])}; pnl identical per override set: {same} "
            f"({len(set(pnl_seq.values()))} distinct pnls)",
        )

    # -------------------------------------------------------------------------------- launchers
    def bench_launchers(self) -> None:
        """joblib vs Ray launcher on the sweep's 8 configs (bench/sweep_launcher_bench.py)."""
        rows, checks = slb.run(self)
        for row in rows:
            self.add(Row("launchers", **row))
        for ok, text in checks:
            self.results.check(ok, text)

    # -------------------------------------------------------------------------------- fetch
    def bench_fetch(self) -> None:
        """Fetcher vs TWS simulator with IB's pacing, both on one FakeClock loop (fetch_bench)."""
        first, last = self.sizes.fetch_range
        symbol = "AAPL"
        span = f"{first.year}" if (first.month, last.month) == (1, 12) else f"{first}..{last}"
        progress("fetch: warming up on one week (simulator + fetcher on a simulated clock)")
        fb.fetch(self.fresh_dir("fetch-warm"), dt.date(2024, 1, 2), dt.date(2024, 1, 8))
        for chunk in (None, 5):
            root = self.fresh_dir("fetch")
            progress(f"fetch: {span} RTH 1-min {symbol}, chunk_sessions={chunk}, 1 run")
            run = fb.fetch(root, first, last, symbol=symbol, chunk_sessions=chunk)
            n = run.chunk_sessions
            label = f"{n} session{'s' if n > 1 else ''}/request"
            label += ", default" if chunk is None else ""
            what = f"{span} RTH 1-min {symbol} ({run.sessions} sessions), {label}"
            data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(run).items()}

            def probe(chunk: int | None = chunk) -> Any:
                return fb.fetch(self.fresh_dir("probe-fetch"), first, last, chunk_sessions=chunk)

            self.add(
                Row(
                    "fetch",
                    f"fetch: requests made (received by the simulator, retries included), {what}",
                    f"{run.server_requests}",
                    f"{run.optimal} (optimal)",
                    f"{run.server_requests / max(1, run.optimal):.2f}x optimal",
                    "= optimal",
                    run.server_requests == run.optimal,
                    data,
                    probe=probe,
                )
            )
            self.add(
                Row(
                    "fetch",
                    f"fetch: pacing violations, simulator 162s · guard-history audit, {label}",
                    f"{run.server_pacing} · {run.guard_violations}",
                    f"{run.server_requests} requests checked on the simulated clock",
                    "",
                    "0 · 0",
                    run.server_pacing == 0 and run.guard_violations == 0,
                    {"server_pacing": run.server_pacing, "guard": run.guard_violations},
                    probe=probe,
                )
            )
            bound = fb.pacing_bound_s(run.server_requests)
            self.add(
                Row(
                    "fetch",
                    f"fetch: implied wall time at IB's limits (simulated clock), {label}",
                    f"{clock_time(run.simulated_s)} simulated ({secs(run.real_s)} real, 1 run)",
                    f"{clock_time(bound)} (pacing lower bound, 0-latency answers)",
                    f"{run.simulated_s / bound:.3f}x bound" if bound else "",
                    "—",
                    None,
                    {"simulated_s": run.simulated_s, "real_s": run.real_s, "bound_s": bound},
                )
            )
            ok, text = fb.compare_with_truth(run)
            self.results.check(ok, f"fetch ({label}): {text}")
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(run.server_outcomes.items()))
            self.results.check(
                run.requests == run.server_requests == run.guard_sends
                and run.server_outcomes == {"ok": run.requests}
                and run.retries == 0
                and run.sessions_fetched == run.sessions,
                f"fetch ({label}): fetcher {run.requests} requests = simulator received "
                f"{run.server_requests} ({outcomes}) = guard sends {run.guard_sends}; retries "
                f"{run.retries}; sessions fetched {run.sessions_fetched}/{run.sessions}; "
                f"{run.bars:,} bars; loop: {run.jumps} time jumps, {run.settled} deferred for "
                "late socket data",
            )
            if chunk is None:
                again = fb.rerun_requests(run)
                self.results.check(
                    again == 0, f"fetch: a rerun over the filled catalog made {again} requests"
                )

    # -------------------------------------------------------------------------------- migrate
    def bench_migrate(self) -> None:
        """Legacy PostgreSQL -> catalog (scripts/migrate.py, a subprocess) vs the raw ADBC read."""
        n_sym, per = 10, self.sizes.migrate_rows
        n = n_sym * per
        progress("migrate: starting the embedded PostgreSQL 18")
        pg = mb.PgServer()
        try:
            for name, k in (("empty", 0), ("m1", 1), ("m2", 2)):
                t = pg.create_db(name, n_sym if k else 0, per * k)
                progress(f"migrate: {name}: {n_sym * per * k:,} rows loaded in {t:.1f} s")
            self._migrate(pg, n_sym, n)
        finally:
            pg.close()

    def _migrate(self, pg: mb.PgServer, n_sym: int, n: int) -> None:
        dsn = pg.dsn("m1")
        mb.raw_read_table(pg.dsn("empty"))  # warm the driver
        progress(f"migrate: raw ADBC reads of {n:,} rows x{self.reps}")
        whole, got = timed(mb.raw_read_table, self.reps, lambda: (dsn,))
        per_sym, got_sym = timed(mb.raw_read_symbols, self.reps, lambda: (dsn,))
        raw_best = min(whole.best, per_sym.best)
        raw_how = "whole table" if whole.best <= per_sym.best else "per symbol"
        self.results.check(
            got == got_sym == n, f"migrate: raw reads returned {got:,} / {got_sym:,} of {n:,} rows"
        )

        def ours(db: str, stem: str) -> mb.MigrateRun:
            root = self.fresh_dir(stem)
            return mb.run_migrate(mb.migrate_cmd(root), pg.dsn(db), self.work / "runs", self.env)

        progress("migrate: baseline (scripts/migrate.py on an empty table, exits 1: no rows)")
        base = ours("empty", "migrate-empty")
        progress(f"migrate: scripts/migrate.py on {n:,} rows x{self.reps} (fresh catalog each)")
        runs = [ours("m1", "migrate-ours") for _ in range(self.reps)]
        best = min(runs, key=lambda r: r.wall_s)
        progress(f"migrate: scripts/migrate.py on the doubled table ({2 * n:,} rows), 1 run")
        big = ours("m2", "migrate-ours2")
        for r, rows in ((best, n), (big, 2 * n)):
            v = r.validation
            counts = {s["symbol"]: s.get("catalog_rows") for s in v.get("symbols", [])}
            self.results.check(
                r.returncode == 0
                and bool(v.get("ok"))
                and all(s.get("status") == "ok" for s in v.get("symbols", []))
                and len(counts) == n_sym
                and sum(int(c or 0) for c in counts.values()) == rows
                and all(
                    s.get("catalog_rows") == s.get("source_rows") for s in v.get("symbols", [])
                ),
                f"migrate {rows:,} rows: exit {r.returncode}, validation ok {v.get('ok')}, "
                f"{len(counts)} symbols, catalog rows {sum(int(c or 0) for c in counts.values()):,}"
                f" = source {rows:,} (per symbol catalog_rows = source_rows), statuses "
                f"{sorted({str(s.get('status')) for s in v.get('symbols', [])})}",
            )
        self.results.check(
            base.returncode != 0 and "no rows" in base.stdout + base.stderr,
            f"migrate baseline run on the empty table exited {base.returncode} (no rows)",
        )
        rate = n / best.wall_s
        sec = best.validation.get("seconds", {})
        phases = " · ".join(f"{k} {v:.1f} s" for k, v in sec.items())
        # validation now overlaps the migration, so the phases do not add up to the wall time
        mig = sum(float(sec.get(k, 0)) for k in ("statistics", "plan", "migrate"))
        self.add(
            Row(
                "migrate",
                f"migrate: {n:,} rows ({n_sym} symbols) PostgreSQL -> catalog, end to end "
                "(scripts/migrate.py: start-up, statistics, read+write, validation)",
                f"{per_s(rate)} ({secs(best.wall_s)}; {phases})",
                f"{per_s(n / raw_best)} (raw ADBC read, {raw_how}, {secs(raw_best)})",
                f"{raw_best / best.wall_s:.2f}x raw read",
                "≥ 600,000 rows/s",
                rate >= 600_000,
                {
                    "rows": n,
                    "wall_s": [r.wall_s for r in runs],
                    "seconds": sec,
                    "timings": best.timings,
                    "raw_table_s": whole.runs,
                    "raw_symbols_s": per_sym.runs,
                },
            )
        )
        self.add(
            Row(
                "migrate",
                "migrate: migration phases alone (statistics + plan + read/convert/write; "
                "validation.json seconds; per-symbol validation overlaps them)",
                per_s(n / mig) if mig else "n/a",
                f"{per_s(n / whole.best)} (whole table) · {per_s(n / per_sym.best)} (per symbol)",
                f"{raw_best / mig:.2f}x raw read" if mig else "",
                "—",
                None,
                {k + "_s": sec.get(k) for k in ("statistics", "plan", "migrate", "validate")},
            )
        )
        if self.profile_top and rate < 600_000:  # here: the server is gone by profile_missed
            self._profile_migrate(pg, n)
        mb_ = 1e6
        growth, growth2 = (
            (best.peak_rss - base.peak_rss) / mb_,
            (big.peak_rss - base.peak_rss) / mb_,
        )
        self.add(
            Row(
                "migrate",
                f"migrate: peak RSS of the child, {n:,} rows · {2 * n:,} rows (doubled table)",
                f"{best.peak_rss / mb_:.0f} MB · {big.peak_rss / mb_:.0f} MB "
                f"(+{growth:.0f} · +{growth2:.0f} MB over baseline)",
                f"{base.peak_rss / mb_:.0f} MB baseline (same script, empty table)",
                f"{big.peak_rss / max(best.peak_rss, 1):.2f}x when doubled",
                "growth ≤ 150 MB, flat when doubled",
                growth <= 150 and growth2 <= 150 and big.peak_rss <= best.peak_rss * 1.1,
                {
                    "baseline_rss": base.peak_rss,
                    "rss": [r.peak_rss for r in runs],
                    "rss_doubled": big.peak_rss,
                    "doubled_wall_s": big.wall_s,
                    "doubled_rows_per_s": 2 * n / big.wall_s,
                },
            )
        )
        self.add(
            Row(
                "migrate",
                f"migrate: doubled table ({2 * n:,} rows), end to end, 1 run",
                f"{per_s(2 * n / big.wall_s)} ({secs(big.wall_s)})",
                "",
                "",
                "—",
                None,
                {"seconds": big.validation.get("seconds")},
            )
        )

    def _profile_migrate(self, pg: mb.PgServer, n: int) -> None:
        """cProfile of scripts/migrate.py (one run), cumulative, project code only."""
        out = self.fresh_dir("profile-migrate").with_suffix(".prof")
        cmd = [PY, "-m", "cProfile", "-o", str(out), *mb.migrate_cmd(self.fresh_dir("prof"))[1:]]
        progress(f"migrate: profiling scripts/migrate.py on {n:,} rows")
        mb.run_migrate(cmd, pg.dsn("m1"), self.work / "runs", self.env)
        buf = io.StringIO()
        stats = pstats.Stats(str(out), stream=buf).sort_stats("cumulative")
        stats.print_stats(r"lib/ntrader/|scripts/", self.profile_top + 6)
        text = buf.getvalue().split("ncalls", 1)
        body = "ncalls" + text[1].rstrip() if len(text) == 2 else buf.getvalue()
        name = f"migrate: {n:,} rows end to end (subprocess)"
        self.results.profiles[name] = body.replace(str(REPO) + "/", "")

    # -------------------------------------------------------------------------------- profile
    def profile_missed(self, top: int) -> None:
        """cProfile our side of every missed target: by own time in-process; for a subprocess,
        by cumulative time restricted to ntrader / scripts / exchange_calendars code (the rest is
        start-up)."""
        seen: set[str] = set()
        for row in self.results.rows:
            if row.met is not False or (row.probe is None and row.probe_cmd is None):
                continue
            key = row.name.split(":")[0] + ":" + getattr(row.probe, "__qualname__", "cmd")
            if key in seen:
                continue
            seen.add(key)
            progress(f"profiling {row.name}")
            buf = io.StringIO()
            if row.probe is not None:
                prof = cProfile.Profile()
                prof.runcall(row.probe)
                stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime")
                stats.print_stats(top)
            else:
                assert row.probe_cmd is not None
                out = self.fresh_dir("profile").with_suffix(".prof")
                cmd = [PY, "-m", "cProfile", "-o", str(out), *row.probe_cmd[1:]]
                run_cmd(cmd, self.env)
                stats = pstats.Stats(str(out), stream=buf).sort_stats("cumulative")
                stats.print_stats(r"lib/ntrader/|scripts/|exchange_calendars/", top + 6)
            text = buf.getvalue().split("ncalls", 1)
            body = "ncalls" + text[1].rstrip() if len(text) == 2 else buf.getvalue()
            body = body.replace(str(REPO) + "/", "").replace(sys.prefix + "/", "")
            self.results.profiles[row.name] = body
            print(f"--- cProfile: {row.name}\n{body}", file=sys.stderr)


def _read_raw_frame(directory: Path) -> BarFrame:
    """Every ``*.parquet`` of a bar-type directory (any file naming), sorted by ts_event."""
    frames = [table_to_frame(pq.read_table(p)) for p in sorted(directory.glob("*.parquet"))]
    frame = BarFrame.concat(frames)
    return frame.take(np.argsort(frame.ts_event, kind="stable"))


README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(table: str) -> None:
    """Replace the performance table between README's bench markers (full runs only)."""
    text = README.read_text()
    if START not in text or END not in text:
        progress("README has no bench markers; table not copied")
        return
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table.strip()}\n{END}{tail}")
    progress(f"refreshed the performance table in {README}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(BENCHES), help=f"comma list of: {', '.join(BENCHES)}"
    )
    parser.add_argument("--quick", action="store_true", help="small inputs (smoke run)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per timing (best kept)")
    parser.add_argument("--profile", action="store_true", help="cProfile every missed target")
    parser.add_argument("--top", type=int, default=10, help="functions listed per profile")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir of inputs")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not refresh README's performance table"
    )
    args = parser.parse_args(argv)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(only) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {BENCHES}")
    if args.reps < 1:
        parser.error("--reps must be >= 1")

    logger.remove()  # the library's info lines would drown the progress output
    logger.add(sys.stderr, level="WARNING")
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="ntrader-bench-"))
    progress(f"inputs in {work}; benchmarks: {', '.join(only)}{' (quick)' if args.quick else ''}")
    bench = Bench(args, work)
    t0 = time.perf_counter()
    try:
        for name in BENCHES:
            if name in only:
                getattr(bench, f"bench_{name}")()
        if args.profile:
            try:
                bench.profile_missed(args.top)
            except Exception as exc:  # a profile must not cost the results
                progress(f"profiling failed: {type(exc).__name__}: {exc}")
    finally:
        if args.keep:
            progress(f"inputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - t0

    header = (
        f"**make bench — {time.strftime('%Y-%m-%d %H:%M')}**"
        f"{' (quick)' if args.quick else ''}\n\n"
        f"best of {args.reps} · Python {platform.python_version()} · nautilus_trader "
        f"{nautilus_trader.__version__} · pyarrow {pa.__version__} · {os.cpu_count()} cpus · "
        f"load avg {load_before:.2f} before / {os.getloadavg()[0]:.2f} after · "
        f"total {elapsed:.0f} s"
    )
    text = markdown(bench.results, header)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.md").write_text(text)
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "quick": args.quick,
        "reps": args.reps,
        "benchmarks": only,
        "sizes": {k: str(v) for k, v in asdict(bench.sizes).items()},
        "python": platform.python_version(),
        "nautilus_trader": nautilus_trader.__version__,
        "pyarrow": pa.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "elapsed_s": elapsed,
        "loadavg_before_after": [load_before, os.getloadavg()[0]],
        "rows": [{k: v for k, v in asdict(r).items() if k != "probe"} for r in bench.results.rows],
        "checks": bench.results.checks,
        "profiles": bench.results.profiles,
    }
    (OUT / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if not (args.no_readme or args.quick or set(only) != set(BENCHES)):
        update_readme(text)
    progress(f"wrote {OUT / 'results.md'} and results.json ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

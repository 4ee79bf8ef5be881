"""The shared harness of ``bench/run.py``: timing, rows and results, the markdown table, the input
sizes, the context every area benchmark runs in, the profiler of missed targets and the README
table refresh.

An area benchmark is a function ``bench_<area>(ctx: Context) -> None`` in its own module; it adds
its rows with ``ctx.add(Row(...))`` and its correctness checks with ``ctx.results.check(...)``.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import gc
import io
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntrader.catalog import Catalog
from ntrader.instruments import bar_type_for, resolve_instrument_id

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
PY = sys.executable
STARTUP = "scripts/scan.py format=json on an empty catalog"
STARTUP_TARGET_S = 0.6  # issue 13 §3: `make scan` on an empty catalog, whole process


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


# ------------------------------------------------------------------------------------ sizes


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
    netting_symbols: tuple[int, ...] = (1, 2)  # NETTING vs HEDGING backtests over N symbols
    nightly_symbols: int = 5  # symbols of the nightly cron fetch with the split-scale check
    netting_range: tuple[dt.date, dt.date] = (dt.date(2024, 1, 2), dt.date(2024, 1, 31))
    netting_plain_max: int = 2  # Nautilus' NETTING without the workaround: up to N symbols
    stream_years: tuple[int, ...] = (1,)  # backtest memory: 1 symbol x N years (to 2024-12-31)
    stream_symbols: int = 3  # ... and N symbols x 1 year
    manifest_years: tuple[int, int] = (
        2,
        1,
    )  # manifest cost: N years x M months each, one file/year
    stream_big: tuple[int, int] = (2, 1)  # the streamed backtest run for real: N symbols x M years
    retention: tuple[int, int] = (3, 10)  # storage of retention: N symbols x M nightly appends
    report: tuple[int, int] = (20, 1)  # make report: N instruments x M years of daily bars


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
    netting_symbols=(1, 2, 5, 20),
    nightly_symbols=50,
    netting_range=(dt.date(2024, 1, 2), dt.date(2024, 12, 31)),
    netting_plain_max=2,  # 2 symbols x 1 year already takes ~4 cpu-minutes
    stream_years=(1, 3, 10),
    stream_symbols=50,
    manifest_years=(5, 12),
    stream_big=(100, 5),  # 49M bars, about an hour
    retention=(50, 30),
    report=(500, 5),
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


# ------------------------------------------------------------------------------------ context


class Context:
    """What every area benchmark runs in: sizes, repetitions, the temp work dir, the env of the
    subprocesses, the results, and the state areas share (filled by whichever area runs first).
    """

    def __init__(self, work: Path, *, sizes: Sizes, reps: int, profile_top: int = 0) -> None:
        self.reps = reps
        self.sizes = sizes
        self.work = work
        self.results = Results()
        self.env = {**os.environ, "NTRADER_RUNS": str(work / "runs")}
        self.env.pop("NAUTILUS_PATH", None)
        self.iid = resolve_instrument_id("SYN.NASDAQ")
        self.bar_type = bar_type_for(self.iid, "1-MINUTE-LAST")
        self.profile_top = profile_top  # 0: --profile not given
        self._counter = 0
        # Shared between areas:
        self.year: tuple[Catalog, int] | None = None  # the catalog the import wrote (ours); load
        self.bt: tuple[Path, str, int] | None = None  # backtest catalog root, bar type, bars
        self._startup: dict[str, Timing] = {}  # start-up references; scan and check

    def fresh_dir(self, stem: str) -> Path:
        self._counter += 1
        return self.work / f"{stem}-{self._counter}"

    def add(self, row: Row) -> None:
        self.results.rows.append(row)
        met = "" if row.met is None else f" (target {row.target}: {'met' if row.met else 'MISSED'})"
        progress(f"{row.name}: ours {row.ours} | ref {row.reference} | {row.ratio}{met}")

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
                target = name == STARTUP  # the others are context
                self.add(
                    Row(
                        "startup",
                        f"start-up: {name}",
                        secs(t.best),
                        "",
                        "",
                        f"≤ {secs(STARTUP_TARGET_S)}" if target else "—",
                        t.best <= STARTUP_TARGET_S if target else None,
                        {"s": t.runs},
                        probe_cmd=cmds[name] if target else None,
                    )
                )
        return self._startup[STARTUP]


# ------------------------------------------------------------------------------------ profile


# The scripts end a run with ``os._exit`` (``ntrader.runs.exit_now``: no native teardown), which
# skips the dump of ``python -m cProfile``; this runner also dumps from inside ``os._exit``.
_PROFILE_RUNNER = """
import cProfile, os, runpy, sys
out, script = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(os.path.abspath(script))
prof = cProfile.Profile()
_exit = os._exit
def dump_and_exit(code):
    prof.disable()
    prof.dump_stats(out)
    _exit(code)
os._exit = dump_and_exit
try:
    prof.runcall(runpy.run_path, os.path.abspath(script), run_name="__main__")
finally:
    prof.dump_stats(out)
"""


def profiled_cmd(cmd: list[str], out: Path) -> list[str]:
    """``cmd`` (``[python, script, args…]``) under cProfile, its stats written to ``out``."""
    return [cmd[0], "-c", _PROFILE_RUNNER, str(out), *cmd[1:]]


def profile_body(buf: io.StringIO) -> str:
    """The table of a ``print_stats`` output (from its ``ncalls`` header on)."""
    text = buf.getvalue().split("ncalls", 1)
    return "ncalls" + text[1].rstrip() if len(text) == 2 else buf.getvalue()


def profile_missed(ctx: Context, top: int) -> None:
    """cProfile our side of every missed target: by own time in-process; for a subprocess,
    by cumulative time restricted to ntrader / scripts / exchange_calendars code (the rest is
    start-up)."""
    seen: set[str] = set()
    for row in ctx.results.rows:
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
            out = ctx.fresh_dir("profile").with_suffix(".prof")
            run_cmd(profiled_cmd(row.probe_cmd, out), ctx.env)
            stats = pstats.Stats(str(out), stream=buf).sort_stats("cumulative")
            stats.print_stats(r"lib/ntrader/|scripts/|exchange_calendars/", top + 6)
        body = profile_body(buf)
        body = body.replace(str(REPO) + "/", "").replace(sys.prefix + "/", "")
        ctx.results.profiles[row.name] = body
        print(f"--- cProfile: {row.name}\n{body}", file=sys.stderr)


# ------------------------------------------------------------------------------------ README

README = REPO / "README.md"
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

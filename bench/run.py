"""ntrader benchmarks, each side by side with its reference path, in one process.

    python bench/run.py                      # everything (~40 min on 2 cores)
    python bench/run.py --only import,load   # a selection of: import, load, compact, scan,
                                             #   scale, check, backtest, netting, stream,
                                             #   manifest, sweep, launchers, fetch, migrate
    python bench/run.py --quick              # small inputs, a smoke run
    python bench/run.py --profile            # cProfile our side of every missed target
    python bench/run.py --merge OUT1 OUT2 …   # one table from area runs done separately

Each timed thing is the best of ``--reps`` (3) repetitions after a warm-up. The markdown table goes
to stdout and to ``bench/out/results.md`` (all repetitions in ``bench/out/results.json``); progress
goes to stderr. Generated inputs live in a temp dir (never ``data/catalog``). Targets are
reported, never asserted.

This file only selects, runs and writes: each area's benchmark is ``bench_<area>(ctx)`` in its own
module (:data:`BENCHES`), the shared pieces are in ``bench/harness.py``. Also runs as
``python -m bench.run`` from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python bench/run.py: import ``bench.*`` from the repo root, not bench/
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
    sys.path.insert(0, str(_HERE.parent))

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict

import nautilus_trader
import numpy as np
import pandas as pd
import pyarrow as pa
from loguru import logger

# Every area module is imported here, so its imports are warmed before anything is timed.
from bench import (
    backtest_bench,
    check_bench,
    compact_bench,
    fetch_bench,
    import_bench,
    load_bench,
    manifest_bench,
    migrate_bench,
    netting_bench,
    report_bench,
    retention_bench,
    scale_bench,
    scan_bench,
    stream_bench,
    stream_big_bench,
    sweep_bench,
    sweep_launcher_bench,
)
from bench.harness import (
    FULL,
    OUT,
    QUICK,
    Context,
    markdown,
    profile_missed,
    progress,
    update_readme,
)

# The areas, in the order they run (load reuses the import's catalog; sweep and launchers the
# backtest's).
BENCHES: dict[str, Callable[[Context], None]] = {
    "import": import_bench.bench_import,
    "load": load_bench.bench_load,
    "compact": compact_bench.bench_compact,
    "scan": scan_bench.bench_scan,
    "scale": scale_bench.bench_scale,
    "check": check_bench.bench_check,
    "backtest": backtest_bench.bench_backtest,
    "netting": netting_bench.bench_netting,
    "stream": stream_bench.bench_stream,
    "stream_big": stream_big_bench.bench_stream_big,
    "manifest": manifest_bench.bench_manifest,
    "retention": retention_bench.bench_retention,
    "report": report_bench.bench_report,
    "sweep": sweep_bench.bench_sweep,
    "launchers": sweep_launcher_bench.bench_launchers,
    "fetch": fetch_bench.bench_fetch,
    "migrate": migrate_bench.bench_migrate,
}


def main(argv: list[str] | None = None) -> int:
    names = tuple(BENCHES)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(names), help=f"comma list of: {', '.join(names)}"
    )
    parser.add_argument("--quick", action="store_true", help="small inputs (smoke run)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per timing (best kept)")
    parser.add_argument("--profile", action="store_true", help="cProfile every missed target")
    parser.add_argument("--top", type=int, default=10, help="functions listed per profile")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir of inputs")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not refresh README's performance table"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"where results.md/.json go (default {OUT})"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="merge the results.json of earlier runs (e.g. one area each) into one table; "
        "README is refreshed when they cover every area, full size",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, names, readme=not args.no_readme)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(only) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {names}")
    if args.reps < 1:
        parser.error("--reps must be >= 1")

    logger.remove()  # the library's info lines would drown the progress output
    logger.add(sys.stderr, level="WARNING")
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="ntrader-bench-"))
    progress(f"inputs in {work}; benchmarks: {', '.join(only)}{' (quick)' if args.quick else ''}")
    ctx = Context(
        work,
        sizes=QUICK if args.quick else FULL,
        reps=args.reps,
        profile_top=args.top if args.profile else 0,
    )
    t0 = time.perf_counter()
    try:
        for name, bench in BENCHES.items():
            if name in only:
                bench(ctx)
        if args.profile:
            try:
                profile_missed(ctx, args.top)
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
    text = markdown(ctx.results, header)
    print(text)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "quick": args.quick,
        "reps": args.reps,
        "benchmarks": only,
        "sizes": {k: str(v) for k, v in asdict(ctx.sizes).items()},
        "python": platform.python_version(),
        "nautilus_trader": nautilus_trader.__version__,
        "pyarrow": pa.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "elapsed_s": elapsed,
        "loadavg_before_after": [load_before, os.getloadavg()[0]],
        "rows": [{k: v for k, v in asdict(r).items() if k != "probe"} for r in ctx.results.rows],
        "checks": ctx.results.checks,
        "profiles": ctx.results.profiles,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if not (args.no_readme or args.quick or set(only) != set(names)):
        update_readme(text)
    progress(f"wrote {out / 'results.md'} and results.json ({elapsed:.0f} s)")
    return 0


def _as_runs(payload: dict) -> list[dict]:
    """A run's ``results.json`` as is; a merged one (``bench/table/results.json``, the data of
    README's table) as one run per area, each with its own time."""
    if "merged_from" not in payload:
        return [payload]
    return [
        {
            **payload,
            "benchmarks": [area],
            "when": payload["when"][area],
            "rows": [r for r in payload["rows"] if r["bench"] == area],
        }
        for area in payload["benchmarks"]
    ]


def merge(dirs: list[Path], out: Path, names: tuple[str, ...], *, readme: bool) -> int:
    """One table from several runs' ``results.json`` (rows in area order; an area measured in
    more than one run: the last run given wins)."""
    from bench.harness import Results, Row

    runs = []
    for d in dirs:
        f = d / "results.json"
        if not f.is_file():
            progress(f"{f} does not exist")
            return 2
        runs += _as_runs(json.loads(f.read_text()))
    blocks: list[tuple[dict, list[str]]] = []  # a run's rows belong to its areas together
    for run in runs:
        mine = [a for a in names if a in run["benchmarks"]]
        blocks = [b for b in blocks if not set(b[1]) & set(mine)] + [(run, mine)]
    blocks.sort(key=lambda b: names.index(b[1][0]) if b[1] else len(names))
    by_area = {a: run for run, areas in blocks for a in areas}
    results = Results()
    fields = set(Row.__dataclass_fields__) - {"probe", "probe_cmd"}
    for run, _ in blocks:
        for r in run["rows"]:
            results.rows.append(Row(**{k: v for k, v in r.items() if k in fields}))
    for run in runs:
        results.checks += [c for c in run["checks"] if c not in results.checks]
    when = sorted({run["when"][:16].replace("T", " ") for run in runs})
    areas = ", ".join(f"{a} ({by_area[a]['when'][:16].replace('T', ' ')})" for a in by_area)
    quick = any(run["quick"] for run in runs)
    header = (
        f"**make bench — merged from {len(runs)} runs, {when[0]} .. {when[-1]}**"
        f"{' (quick)' if quick else ''}\n\nareas: {areas} · nautilus_trader "
        f"{runs[-1]['nautilus_trader']} · {runs[-1]['cpus']} cpus"
    )
    text = markdown(results, header)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text)
    merged = {
        "merged_from": [str(d) for d in dirs],
        "benchmarks": list(by_area),
        "when": {a: by_area[a]["when"] for a in by_area},  # so a merged table merges again
        "nautilus_trader": runs[-1]["nautilus_trader"],
        "cpus": runs[-1]["cpus"],
        "quick": quick,
        "rows": [
            {k: v for k, v in asdict(r).items() if k not in ("probe", "probe_cmd")}
            for r in results.rows
        ],
        "checks": results.checks,
    }
    (out / "results.json").write_text(json.dumps(merged, indent=2, default=str) + "\n")
    if readme and not quick and set(by_area) == set(names):
        update_readme(text)
    elif readme:
        missing = sorted(set(names) - set(by_area))
        progress(f"README not refreshed: {'quick runs' if quick else 'missing ' + str(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

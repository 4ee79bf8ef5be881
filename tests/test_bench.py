"""The benchmark (``bench/``) stays runnable: every area of ``bench/run.py``'s registry is a
``bench_<area>`` function in its own module under ``bench/``, and ``python bench/run.py`` (as
``make bench`` runs it) completes the cheapest area and prints its rows."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AREAS = [
    "import",
    "load",
    "compact",
    "scan",
    "scale",
    "check",
    "backtest",
    "netting",
    "stream",
    "stream_big",
    "manifest",
    "retention",
    "report",
    "sweep",
    "launchers",
    "fetch",
    "migrate",
]


def test_every_area_has_its_benchmark_module() -> None:
    from bench import run

    assert list(run.BENCHES) == AREAS  # the order the areas run in, and the table's order
    modules = set()
    for area, bench in run.BENCHES.items():
        module = sys.modules[bench.__module__]
        assert bench.__module__.startswith("bench."), (area, bench.__module__)
        assert Path(module.__file__ or "").resolve().parent == REPO / "bench", area
        assert bench.__name__ == f"bench_{area}"
        assert getattr(module, bench.__name__) is bench
        assert list(inspect.signature(bench).parameters) == ["ctx"], area
        modules.add(bench.__module__)
    assert len(modules) == len(AREAS)  # one module per area
    assert "bench.run" not in modules and "bench.harness" not in modules


def run_bench(*args: str) -> subprocess.CompletedProcess:
    """``python bench/run.py ARGS`` as ``make bench`` runs it."""
    return subprocess.run(
        [sys.executable, "bench/run.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_quick_scan_prints_its_rows(tmp_path: Path) -> None:
    from bench.harness import QUICK

    k = QUICK.scan_instruments
    args = ["--quick", "--reps", "1", "--no-readme", "--only", "scan", "--out", str(tmp_path)]
    proc = run_bench(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line.split(" | ")[0].removeprefix("| ") for line in proc.stdout.splitlines()]
    rows = [name for name in table if name.startswith(("scan:", "start-up:"))]
    assert rows == [
        f"scan: list_catalog, {k} bar types (in-process)",
        "start-up: python -c 'import ntrader.catalog.catalog, hydra'",
        "start-up: scripts/scan.py --help",
        "start-up: scripts/scan.py format=json on an empty catalog",
        f"scan: scripts/scan.py format=json, {k} bar types (subprocess)",
    ]
    assert "| benchmark | ours | reference | ratio | target | met? |" in proc.stdout
    assert f"- OK: scan: list_catalog found {k} bar types" in proc.stdout
    assert f"- OK: scan: scripts/scan.py listed {k} bar types" in proc.stdout
    assert "MISMATCH" not in proc.stdout
    assert "refreshed the performance table" not in proc.stderr  # README left alone

    assert (tmp_path / "results.md").read_text() == proc.stdout.removesuffix("\n")
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["quick"] is True and payload["benchmarks"] == ["scan"]
    assert [r["name"] for r in payload["rows"]] == rows


def test_separate_area_runs_merge_into_one_table(tmp_path: Path) -> None:
    bench = run_bench
    readme = (REPO / "README.md").read_text()
    runs = {}
    for area in ("check", "scan"):  # measured in the "wrong" order: the table keeps area order
        runs[area] = tmp_path / area
        quick = ["--quick", "--reps", "1", "--no-readme", "--only", area]
        p = bench(*quick, "--out", str(runs[area]))
        assert p.returncode == 0, p.stderr[-2000:]
    merged = tmp_path / "merged"
    p = bench("--merge", str(runs["check"]), str(runs["scan"]), "--out", str(merged))
    assert p.returncode == 0, p.stderr[-2000:]
    data = json.loads((merged / "results.json").read_text())
    each = {a: json.loads((d / "results.json").read_text()) for a, d in runs.items()}
    assert [r["name"] for r in data["rows"]] == [
        r["name"] for a in ("scan", "check") for r in each[a]["rows"]
    ]
    assert data["benchmarks"] == ["scan", "check"]
    assert set(data["checks"]) == set(each["scan"]["checks"]) | set(each["check"]["checks"])
    assert "merged from 2 runs" in (merged / "results.md").read_text()
    assert "README not refreshed: quick runs" in p.stderr
    assert (REPO / "README.md").read_text() == readme
    assert bench("--merge", str(tmp_path / "nothing"), "--out", str(merged)).returncode == 2

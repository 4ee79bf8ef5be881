"""The launchers benchmark of ``bench/run.py`` (:func:`bench_launchers`): sweep launchers side by
side, Hydra's joblib launcher (n_jobs=2) vs the Ray launcher.

The same 8-config sweep as the ``sweep`` benchmark (EMA fast x slow x end date, one symbol) runs
once through ``hydra/launcher=joblib hydra.launcher.n_jobs=2`` and once through
``hydra/launcher=ntrader_ray`` on a local Ray instance with 2 CPUs (what ``make sweep
LAUNCHER=ray JOBS=2`` runs), each as ``scripts/backtest.py -m`` in a subprocess, wall-clock timed.

Per-job overhead, per launcher::

    (wall x slots - sum of the jobs' own duration_s) / jobs

``duration_s`` is what ``runs.run_task`` measures inside each job (load, engine, reports), so the
rest is what the launcher costs per job on this machine: process and Ray start-up, imports in the
workers, scheduling, pickling, the sweep summary — expressed in slot-seconds (2 slots here).
Ray's start-up is also timed on its own: ``ray.init(num_cpus=2)`` plus one trivial task, and
``ray.shutdown()``, in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import backtest_bench as btb
from bench.harness import Context, Row, progress, secs

SLOTS = 2
RAY = ["hydra/launcher=ntrader_ray", f"hydra.launcher.ray.init.num_cpus={SLOTS}"]

_RAY_STARTUP = f"""
import json, time
t0 = time.perf_counter()
import ray
t1 = time.perf_counter()
ray.init(num_cpus={SLOTS}, include_dashboard=False, logging_level="ERROR")
t2 = time.perf_counter()
ray.get(ray.remote(lambda: 1).remote())
t3 = time.perf_counter()
ray.shutdown()
t4 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "init": t2 - t1, "first_task": t3 - t2,
                  "shutdown": t4 - t3}}))
"""


def commands(py: str, root: Path, symbol: str, ends: str) -> dict[str, list[str]]:
    base = btb.sweep_cmd(py, root, symbol, "5,10", "20,30", ends, jobs=1)
    return {
        "joblib": btb.sweep_cmd(py, root, symbol, "5,10", "20,30", ends, jobs=SLOTS),
        "ray": base + RAY,
    }


def timed_sweep(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def in_job_seconds(rows: list[dict[str, str]]) -> float:
    return sum(float(r["duration_s"] or 0) for r in rows)


def overhead_per_job(wall: float, rows: list[dict[str, str]]) -> float:
    return (wall * SLOTS - in_job_seconds(rows)) / max(1, len(rows))


def ray_startup(py: str, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [py, "-c", _RAY_STARTUP], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ray start-up probe exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run(ctx: Context) -> tuple[list[dict[str, Any]], list[tuple[bool, str]]]:
    """Rows (:class:`~bench.harness.Row` fields) and checks for ``bench/run.py --only launchers``:
    on the backtest benchmark's one-symbol catalog, with the context's sizes, env and temp dirs.
    """
    root, bar_type, n = btb.backtest_catalog(ctx)
    symbol = bar_type.split("-", 1)[0]
    ends = ",".join(str(d) for d in ctx.sizes.sweep_ends)
    cwd = Path(__file__).resolve().parents[1]
    py = sys.executable
    progress("launchers: warming the OS file cache (scripts/backtest.py --help)")
    subprocess.run(
        [py, "scripts/backtest.py", "--help"],
        cwd=cwd,
        env=ctx.env,
        check=True,
        capture_output=True,
    )
    walls: dict[str, float] = {}
    rows: dict[str, list[dict[str, str]]] = {}
    for name, cmd in commands(py, root, symbol, ends).items():
        runs_root = ctx.fresh_dir(f"launcher-runs-{name}")
        env = {**ctx.env, "NTRADER_RUNS": str(runs_root)}
        progress(f"launchers: 8 jobs through {name} ({SLOTS} slots), 1 run")
        walls[name], _ = timed_sweep(cmd, cwd, env)
        rows[name] = btb.sweep_rows(runs_root)
        progress(f"launchers: {name}: {secs(walls[name])}")
    progress("launchers: Ray start-up alone (ray.init + one task + shutdown, fresh process)")
    start = ray_startup(py, cwd, ctx.env)
    jl, ray = walls["joblib"], walls["ray"]
    k = len(rows["joblib"])
    over = {name: overhead_per_job(walls[name], rows[name]) for name in walls}
    in_job = {name: in_job_seconds(rows[name]) / max(1, len(rows[name])) for name in walls}
    first = ctx.sizes.backtest_range[0]
    out: list[dict[str, Any]] = [
        {
            "name": f"launchers: {k} configs (EMA fast 5,10 x slow 20,30 x end {ends}; {n:,} bars "
            f"from {first}), scripts/backtest.py -m, Ray launcher (local instance, num_cpus=2) "
            f"vs joblib n_jobs=2, 1 run each",
            "ours": secs(ray),
            "reference": f"{secs(jl)} (joblib)",
            "ratio": f"{ray / jl:.2f}x joblib (+{secs(ray - jl)})",
            "target": "—",
            "met": None,
            "data": {"ray_s": ray, "joblib_s": jl, "rows": k},
        },
        {
            "name": f"launchers: per-job overhead = (wall x {SLOTS} slots - sum of in-job "
            f"duration_s) / {k} (mean in-job duration_s in brackets)",
            "ours": f"{secs(over['ray'])} ({secs(in_job['ray'])})",
            "reference": f"{secs(over['joblib'])} ({secs(in_job['joblib'])}) (joblib)",
            "ratio": f"+{secs(over['ray'] - over['joblib'])} per job",
            "target": "—",
            "met": None,
            "data": {"overhead_s": over, "in_job_s": in_job},
        },
        {
            "name": "launchers: Ray start-up, fresh process: import ray · ray.init(num_cpus=2) · "
            "first task · shutdown",
            "ours": " · ".join(
                secs(start[k_]) for k_ in ("import", "init", "first_task", "shutdown")
            ),
            "reference": "",
            "ratio": f"total {secs(sum(start.values()))}",
            "target": "—",
            "met": None,
            "data": start,
        },
    ]
    pnl = {name: btb.pnl_by_overrides(r) for name, r in rows.items()}
    ok = {name: sum(x.get("status") == "ok" for x in r) for name, r in rows.items()}
    same = pnl["ray"] == pnl["joblib"] and len(pnl["joblib"]) == k
    checks = [
        (
            set(ok.values()) == {k} and same,
            f"launchers: sweep_summary.csv rows ok: joblib {ok['joblib']}/{k}, ray "
            f"{ok['ray']}/{len(rows['ray'])}; pnl identical per override set: {same}",
        )
    ]
    return out, checks


def bench_launchers(ctx: Context) -> None:
    """joblib vs Ray launcher on the sweep's 8 configs."""
    rows, checks = run(ctx)
    for row in rows:
        ctx.add(Row("launchers", **row))
    for ok, text in checks:
        ctx.results.check(ok, text)

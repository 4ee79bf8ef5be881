"""The sweep benchmark of ``bench/run.py``: an 8-config ``scripts/backtest.py -m`` sweep.

The same sweep (EMA fast x slow x end date on the backtest benchmark's one-symbol catalog) runs
through Hydra's basic launcher (sequential) and through ``hydra/launcher=joblib n_jobs=2``, each
once as a subprocess, wall-clock timed; both sweep summaries must agree per override set.
"""

from __future__ import annotations

import time

from bench import backtest_bench as btb
from bench.harness import PY, Context, Row, progress, run_cmd, secs


def bench_sweep(ctx: Context) -> None:
    root, bar_type, n = btb.backtest_catalog(ctx)
    symbol = bar_type.split("-", 1)[0]
    fast, slow = "5,10", "20,30"
    ends = ",".join(str(d) for d in ctx.sizes.sweep_ends)
    progress("sweep: warming the OS file cache (scripts/backtest.py --help)")
    run_cmd([PY, "scripts/backtest.py", "--help"], ctx.env)
    walls: dict[int, float] = {}
    rows: dict[int, list[dict[str, str]]] = {}
    for jobs in (1, 2):
        runs_root = ctx.fresh_dir(f"sweep-runs-{jobs}")
        env = {**ctx.env, "NTRADER_RUNS": str(runs_root)}
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
    first = ctx.sizes.backtest_range[0]
    ctx.add(
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

    ctx.add(
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
    ctx.results.check(
        all(len(r) == 8 for r in rows.values()) and set(ok_counts.values()) == {8} and same,
        f"sweep: sweep_summary.csv rows ok: sequential {ok_counts[1]}/{len(rows[1])}, "
        f"joblib {ok_counts[2]}/{len(rows[2])}; pnl identical per override set: {same} "
        f"({len(set(pnl_seq.values()))} distinct pnls)",
    )

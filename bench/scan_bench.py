"""The scan benchmark of ``bench/run.py``: listing a catalog of many instruments.

``list_catalog`` in-process, and ``scripts/scan.py format=json`` as a subprocess, net of the
start-up reference (``scripts/scan.py`` on an empty catalog, measured once per run).
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench import gen
from bench.harness import PY, Context, Row, progress, run_cmd, secs, timed
from ntrader.catalog import Catalog, list_catalog


def bench_scan(ctx: Context) -> None:
    k = ctx.sizes.scan_instruments
    first, last = ctx.sizes.scan_days
    progress(f"scan: writing {k} instruments ({first} .. {last} RTH 1-min) with write_bars")
    t0 = time.perf_counter()
    catalog, total = gen.scan_catalog(
        ctx.fresh_dir("scan"), instruments=k, first_day=first, last_day=last
    )
    progress(f"scan: {k} bar types, {total:,} bars written in {time.perf_counter() - t0:.1f} s")

    def scan() -> list[Any]:
        return list_catalog(Catalog(catalog.root))

    scan()
    t_scan, avail = timed(scan, ctx.reps)
    ctx.add(
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
    ctx.results.check(
        len(avail) == k and sum(a.rows for a in avail) == total,
        f"scan: list_catalog found {len(avail)} bar types, {sum(a.rows for a in avail):,} rows",
    )

    start = ctx.startup()
    cmd = [PY, "scripts/scan.py", f"catalog.path={catalog.root}", "format=json"]
    progress(f"scan: scripts/scan.py subprocess x{ctx.reps}")
    t_sub, proc = timed(lambda: run_cmd(cmd, ctx.env), ctx.reps)
    net = t_sub.best - start.best
    ctx.add(
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
    ctx.results.check(len(listed) == k, f"scan: scripts/scan.py listed {len(listed)} bar types")

"""The scale benchmark of ``bench/run.py`` (:func:`bench_scale`): ``make scan`` over 500 and 5,000
instruments, local disk and S3.

The S3 side is a real S3-protocol server on loopback (moto in server mode, its own process), so
it measures the request pattern (one listing per bar type plus one footer read per file, 16 at a
time) rather than a cloud's latency. The 5,000-instrument catalog is written once with
``Catalog.write_bars``; the 500-instrument one is a copy of its first 500 instruments; both are
uploaded to the bucket object by object (``fs.put``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import gen
from bench.harness import REPO, Context, Row, progress, secs
from ntrader.catalog import Catalog, list_catalog


def subset(src: Path, dst: Path, n: int) -> None:
    """The first ``n`` instruments of ``src`` (bar types and instruments) as a catalog ``dst``."""
    for kind in ("bar", "equity"):
        names = sorted(os.listdir(src / "data" / kind))[:n]
        for name in names:
            shutil.copytree(src / "data" / kind / name, dst / "data" / kind / name)


def best(fn: Callable[[], Any], reps: int) -> tuple[float, list[float], Any]:
    runs, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return min(runs), runs, out


def scan_subprocess(py: str, where: str, env: dict[str, str]) -> Callable[[], int]:
    cmd = [py, "scripts/scan.py", f"catalog.path={where}", "format=json"]

    def run() -> int:
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"scan failed ({p.returncode}): {p.stderr[-2000:]}")
        return len(json.loads(p.stdout))

    return run


def measure(ctx: Context, sizes: tuple[int, int]) -> dict[str, Any]:
    """Returns {(where, n): (best_s, runs)} for in-process list_catalog and scripts/scan.py."""
    from tests.s3_fixtures import running_server  # the same server the tests use (imports pytest)

    small, big = sizes
    first, last = ctx.sizes.scan_days
    big_root = ctx.fresh_dir("scale-big")
    t0 = time.perf_counter()
    gen.scan_catalog(big_root, instruments=big, first_day=first, last_day=last)
    progress(f"scale: {big} instruments written in {time.perf_counter() - t0:.1f} s")
    small_root = ctx.fresh_dir("scale-small")
    subset(big_root, small_root, small)

    out: dict[str, Any] = {"local": {}, "s3": {}}
    env = dict(ctx.env)
    for n, root in ((small, small_root), (big, big_root)):
        t, runs, avail = best(lambda r=root: list_catalog(Catalog(r)), ctx.reps)
        ts, sruns, listed = best(scan_subprocess(sys.executable, str(root), env), ctx.reps)
        assert len(avail) == listed == n, (len(avail), listed, n)
        out["local"][n] = {"inproc": (t, runs), "script": (ts, sruns)}

    with running_server(ctx.work / "moto.log") as server:
        bucket = server.fresh_bucket()
        fs = server.fs()
        s3env = {**env, **server.env}
        for n, root in ((small, small_root), (big, big_root)):
            t0 = time.perf_counter()
            local = [p for p in (root / "data").rglob("*") if p.is_file()]
            remote = [f"{bucket}/c{n}/{p.relative_to(root).as_posix()}" for p in local]
            fs.put([str(p) for p in local], remote)  # explicit lists: concurrent PUTs, no probing
            progress(f"scale: {n} instruments uploaded in {time.perf_counter() - t0:.1f} s")
            url = f"s3://{bucket}/c{n}"
            t, runs, avail = best(lambda u=url: list_catalog(Catalog(u)), ctx.reps)
            ts, sruns, listed = best(scan_subprocess(sys.executable, url, s3env), ctx.reps)
            assert len(avail) == listed == n, (len(avail), listed, n)
            out["s3"][n] = {"inproc": (t, runs), "script": (ts, sruns)}
    return out


def bench_scale(ctx: Context) -> None:
    """make scan at 500 and 5,000 instruments, local disk and a local S3 server."""
    small, big = ctx.sizes.scale_instruments
    m = measure(ctx, (small, big))
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
            ctx.add(
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

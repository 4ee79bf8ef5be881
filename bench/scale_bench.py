"""Scale-out benchmark: ``make scan`` over 500 and 5,000 instruments, local disk and S3.

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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.s3_fixtures import running_server  # noqa: E402  (the same server the tests use)


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


def measure(bench: Any, sizes: tuple[int, int]) -> dict[str, Any]:
    """Returns {(where, n): (best_s, runs)} for in-process list_catalog and scripts/scan.py."""
    import gen
    from ntrader.catalog.catalog import Catalog
    from ntrader.catalog.inventory import list_catalog

    small, big = sizes
    first, last = bench.sizes.scan_days
    big_root = bench.fresh_dir("scale-big")
    t0 = time.perf_counter()
    gen.scan_catalog(big_root, instruments=big, first_day=first, last_day=last)
    bench_progress(f"scale: {big} instruments written in {time.perf_counter() - t0:.1f} s")
    small_root = bench.fresh_dir("scale-small")
    subset(big_root, small_root, small)

    out: dict[str, Any] = {"local": {}, "s3": {}}
    env = dict(bench.env)
    for n, root in ((small, small_root), (big, big_root)):
        t, runs, avail = best(lambda r=root: list_catalog(Catalog(r)), bench.reps)
        ts, sruns, listed = best(scan_subprocess(sys.executable, str(root), env), bench.reps)
        assert len(avail) == listed == n, (len(avail), listed, n)
        out["local"][n] = {"inproc": (t, runs), "script": (ts, sruns)}

    with running_server(bench.work / "moto.log") as server:
        bucket = server.fresh_bucket()
        fs = server.fs()
        s3env = {**env, **server.env}
        for n, root in ((small, small_root), (big, big_root)):
            t0 = time.perf_counter()
            local = [p for p in (root / "data").rglob("*") if p.is_file()]
            remote = [f"{bucket}/c{n}/{p.relative_to(root).as_posix()}" for p in local]
            fs.put([str(p) for p in local], remote)  # explicit lists: concurrent PUTs, no probing
            bench_progress(f"scale: {n} instruments uploaded in {time.perf_counter() - t0:.1f} s")
            url = f"s3://{bucket}/c{n}"
            t, runs, avail = best(lambda u=url: list_catalog(Catalog(u)), bench.reps)
            ts, sruns, listed = best(scan_subprocess(sys.executable, url, s3env), bench.reps)
            assert len(avail) == listed == n, (len(avail), listed, n)
            out["s3"][n] = {"inproc": (t, runs), "script": (ts, sruns)}
    return out


def bench_progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)

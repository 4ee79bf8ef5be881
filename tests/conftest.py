"""Shared fixtures: a real catalog on disk in a temp dir, bar frames, scripts run as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ntrader.catalog.barframe import BarFrame
from ntrader.catalog.catalog import Catalog
from ntrader.instruments import bar_type_for, make_equity, resolve_instrument_id

REPO = Path(__file__).resolve().parents[1]
MINUTE = 60_000_000_000
T0 = 1_704_205_860_000_000_000  # 2024-01-02 14:31 UTC = 09:31 New York (first RTH bar close)


def frame(minutes, price: float = 100.0, precision: int = 2, volume: float = 10.0) -> BarFrame:
    """Bars closing at T0 + m minutes for each m; prices derived from ``price`` and m."""
    m = np.asarray(list(minutes), dtype=np.int64)
    close = np.round(price + (m % 7) * 0.01, precision)
    return BarFrame(
        T0 + m * MINUTE,
        close.copy(),
        np.round(close + 0.05, precision),
        np.round(close - 0.05, precision),
        close.copy(),
        np.full(len(m), volume),
        precision,
        0,
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """An empty catalog (its directory exists: readers refuse a missing one)."""
    (tmp_path / "catalog").mkdir()
    return Catalog(tmp_path / "catalog")


@pytest.fixture
def aapl():
    iid = resolve_instrument_id("AAPL")
    return iid, bar_type_for(iid, "1-MINUTE-LAST"), make_equity(iid, 2)


@dataclass
class ScriptResult:
    code: int
    stdout: str
    stderr: str
    runs: Path

    def summary(self) -> dict:
        files = sorted(self.runs.rglob("summary.json"), key=lambda p: p.stat().st_mtime)
        assert files, f"no summary.json under {self.runs}"
        return json.loads(files[-1].read_text())


@pytest.fixture(scope="session", autouse=True)
def hash_cache_in_temp(tmp_path_factory):
    """Manifests' file-hash cache (``ntrader.catalog.manifest``) in a temp dir, not ~/.cache."""
    os.environ["NTRADER_CACHE"] = str(tmp_path_factory.mktemp("ntrader-cache"))


@pytest.fixture
def run_script(tmp_path: Path):
    """Run ``scripts/<name>.py`` with Hydra overrides in a subprocess, as ``make`` does."""
    runs = tmp_path / "runs"

    def _run(name: str, *overrides: str, env: dict | None = None, timeout=300) -> ScriptResult:
        e = dict(os.environ)
        e["NTRADER_RUNS"] = str(runs)
        e.pop("NAUTILUS_PATH", None)
        e.update(env or {})
        p = subprocess.run(
            [sys.executable, str(REPO / "scripts" / f"{name}.py"), *overrides],
            cwd=REPO,
            env=e,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return ScriptResult(p.returncode, p.stdout, p.stderr, runs)

    return _run


def run_make(
    target: str, *args: str, runs: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``make -s <target> ARGS…`` in the repo as a user runs it, run folders under ``runs``."""
    return subprocess.run(
        ["make", "-s", target, *args],
        cwd=REPO,
        env={**os.environ, "NTRADER_RUNS": str(runs), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove a catalog is byte-for-byte unchanged)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def run_on_pty(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> tuple[int, bytes, bytes]:
    """Run ``args`` in the repo with stderr on a pseudo-terminal of 40 x 120 (tqdm draws nothing
    at 0 x 0): (exit code, what the terminal received, stdout)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen(
        args, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower
    )
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    stdout = p.stdout.read() if p.stdout else b""
    code = p.wait(timeout)
    os.close(leader)
    return code, out, stdout

"""This machine: the Python version, the repository's ``.venv`` (in sync with ``uv.lock``), the
key packages (importable, at the versions ``uv.lock`` pins) and the free disk space where the
catalog lives."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import sys
import tomllib
from pathlib import Path

from ntrader.doctor.findings import Finding, fail, ok, warn
from ntrader.errors import SYSTEM_ERROR

PYTHON = (3, 12)  # nautilus_trader 1.231.0 needs >= 3.12; pyproject pins < 3.13
KEY_PACKAGES = ("nautilus_trader", "ib_async", "pyarrow", "pandas")
GIB = 1024**3
MIB = 1024**2
SETUP = "make setup (installs .venv from uv.lock; uv picks Python 3.12 from .python-version)"


def python_version(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Finding:
    text = ".".join(map(str, version))
    if tuple(version[:2]) == PYTHON:
        return ok("python", f"Python {text} ({sys.executable})")
    return fail(
        "python",
        f"Python {text}: ntrader needs {PYTHON[0]}.{PYTHON[1]}.x (nautilus_trader 1.231.0)",
        f"{SETUP}, then run through make or .venv/bin/python",
        SYSTEM_ERROR,
    )


def venv(repo: Path) -> Finding:
    """Running from ``<repo>/.venv``, synced after the last change of ``uv.lock``."""
    want = repo / ".venv"
    prefix = Path(sys.prefix).resolve()
    if not want.exists():
        return fail("venv", f"no {want}", SETUP, SYSTEM_ERROR)
    if prefix != want.resolve():
        return warn(
            "venv",
            f"running from {prefix}, not the repository's {want}",
            "run through make or .venv/bin/python (in a notebook: the .venv kernel)",
        )
    stamp, lock = want / ".synced", repo / "uv.lock"
    if stamp.exists() and lock.exists() and stamp.stat().st_mtime < lock.stat().st_mtime:
        return warn("venv", f"{want} was synced before uv.lock last changed", SETUP)
    return ok("venv", str(want))


def locked_versions(lock: Path) -> dict[str, str]:
    """Package name (normalised: ``ib-async``) -> version, from ``uv.lock``."""
    data = tomllib.loads(lock.read_text())
    return {str(p["name"]): str(p["version"]) for p in data.get("package", []) if "version" in p}


def packages(repo: Path, names: tuple[str, ...] = KEY_PACKAGES) -> Finding:
    """Each of ``names`` imports and has the version ``uv.lock`` pins."""
    lock = repo / "uv.lock"
    try:
        pinned = locked_versions(lock)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        pinned = {}
        unreadable = f"uv.lock unreadable ({exc.__class__.__name__}); "
    else:
        unreadable = ""
    seen, broken, differ = [], [], []
    for name in names:
        try:
            importlib.import_module(name)
            have = importlib.metadata.version(name)
        except Exception as exc:  # a missing or broken wheel: ImportError, OSError, ...
            broken.append(f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")
            continue
        want = pinned.get(name.replace("_", "-"))
        seen.append(f"{name} {have}")
        if want and want != have:
            differ.append(f"{name} {have} (uv.lock: {want})")
    if broken:
        return fail("packages", "cannot import " + "; ".join(broken), SETUP, SYSTEM_ERROR)
    if differ or unreadable:
        return warn("packages", unreadable + "versions differ: " + ", ".join(differ), SETUP)
    return ok("packages", ", ".join(seen) + " (as uv.lock pins)")


def disk_space(path: Path, warn_bytes: int = 5 * GIB, fail_bytes: int = 500 * MIB) -> Finding:
    """Free space on the file system of ``path`` (or of its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        return warn("disk", f"cannot measure free space at {probe}: {exc}", "check the path")
    text = f"{_size(free)} free at {probe}"
    fix = (
        "free space there (make gc deletes retained files; make clean-runs DAYS=7 old run "
        "folders) or point CATALOG at a larger disk"
    )
    if free < fail_bytes:
        return fail("disk", f"{text} (< {_size(fail_bytes)}: writes will fail)", fix, SYSTEM_ERROR)
    if free < warn_bytes:
        return warn("disk", f"{text} (< {_size(warn_bytes)})", fix)
    return ok("disk", text)


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def repo_root() -> Path:
    """The checkout this library runs from (``lib/ntrader/doctor/`` -> the repository)."""
    return Path(os.path.abspath(__file__)).parents[3]

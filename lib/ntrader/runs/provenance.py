"""What a run ran on besides its data — ``manifest.json`` of every run folder (:func:`manifest`):
the code (ntrader's version, and the git commit with a dirty flag when run from a checkout), the
interpreter and library versions, a hash of the resolved config and its seed keys. Versions come
from the installed distributions' metadata (nothing is imported for them); git is asked with
fixed arguments, never through a shell.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import xxhash
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

LIBRARIES = ("nautilus_trader", "pandas", "pyarrow", "numpy", "ib_async", "hydra-core", "xxhash")
REPO = Path(__file__).resolve().parents[3]  # lib/ntrader/runs/provenance.py -> the checkout


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def code() -> dict[str, Any]:
    """ntrader's version and, from a git checkout, its commit and whether it has local changes
    (tracked files only); ``None`` where it cannot be told."""
    out: dict[str, Any] = {"ntrader": _version("ntrader"), "git_commit": None, "git_dirty": None}
    if (REPO / ".git").exists():
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
        out["git_commit"] = commit
        out["git_dirty"] = None if status is None else bool(status)
    return out


@cache
def versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{d: _version(d) for d in LIBRARIES}}


def config_hash(text: str) -> str:
    """The xxh3-128 of the resolved config's YAML."""
    return xxhash.xxh3_128_hexdigest(text.encode())


def manifest(cfg: DictConfig, run_id: str, read: dict[str, Any]) -> dict[str, Any]:
    """``manifest.json``: the code, versions and config a run ran on, and what its body says it
    read (``read``: per bar type the files and their hashes)."""
    try:
        text, resolved = OmegaConf.to_yaml(cfg, resolve=True), True
    except OmegaConfBaseException:
        text, resolved = OmegaConf.to_yaml(cfg), False
    return {
        "format": 1,
        "run_id": run_id,
        "code": code(),
        "versions": versions(),
        "config": {"xxh3_128": config_hash(text), "resolved": resolved},
        "seeds": _seeds(cfg),  # a backtest has none: its fill model fills with probability 1
        **read,
    }


def _seeds(cfg: DictConfig) -> dict[str, Any]:
    """Every ``seed`` key of the config (dotted path -> value): the run's random inputs."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, DictConfig):
            for key in node:
                name = str(key)
                try:
                    value = node[name]
                except OmegaConfBaseException:
                    continue
                path = f"{prefix}{name}"
                if (name == "seed" or name.endswith("_seed")) and not isinstance(value, DictConfig):
                    out[path] = value
                walk(value, path + ".")

    walk(cfg, "")
    return out

"""Run-folder names: Hydra's ``${unique_dir:…}``, ``${runs_root:}``, ``${suffix:…}`` and
``${last_session:…}`` resolvers, registered when ``ntrader.runs`` is imported.

Two runs started in the same second get ``-2``, ``-3`` … (also when the folder is taken in the
store of a staged runs root).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from ntrader.runs import store as run_store

_RUN_DIRS: dict[str, str] = {}


def unique_run_dir(base: str) -> str:
    """``base`` if free, else ``base-2``, ``base-3`` … (two runs started in the same second).

    A staged folder must be free in the store as well (runs from other machines land there).
    """
    if base in _RUN_DIRS:
        return _RUN_DIRS[base]
    candidate, n = base, 1
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            os.mkdir(candidate)
            if not _taken_in_store(candidate):
                break
            os.rmdir(candidate)
        except FileExistsError:
            pass
        n += 1
        candidate = f"{base}-{n}"
    _RUN_DIRS[base] = candidate
    return candidate


def _taken_in_store(local: str) -> bool:
    url = run_store.store_url(local)
    if url is None:
        return False
    try:
        return run_store.exists(url)
    except Exception:  # no access: the upload at the end reports it with a hint
        return False


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_run_dir)
    if not OmegaConf.has_resolver("runs_root"):  # cached: a sweep's jobs get the driver's value
        OmegaConf.register_new_resolver("runs_root", run_store.local_root, use_cache=True)
    if not OmegaConf.has_resolver("suffix"):
        OmegaConf.register_new_resolver("suffix", lambda x: f"_{x}" if x else "")
    if not OmegaConf.has_resolver("last_session"):
        OmegaConf.register_new_resolver("last_session", _last_session, use_cache=True)


def _last_session(calendar: str = "XNYS") -> str:
    from ntrader.sessions import last_completed_session

    return str(last_completed_session(calendar))

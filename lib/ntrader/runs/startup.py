"""Hydra start-up trims for every script run (called by ``ntrader.runs.task.entry``).

Launcher plugins: on every run Hydra's plugin discovery (``hydra.core.plugins.Plugins``) imports
each module of the ``hydra_plugins`` namespace package; the Ray launcher's config module alone
(``ray_aws_launcher`` -> ``_config``, the AWS cluster schema) costs ~35 ms, submitit's and
joblib's a few more, for a ``make scan`` that launches nothing. ``skip_unasked_plugins`` puts an
empty package (no ``__path__`` entries) in ``sys.modules`` for each launcher plugin no
``hydra/launcher=…`` override names, so the scan finds nothing inside it. ``make sweep
LAUNCHER=ray`` passes ``hydra/launcher=ntrader_ray`` (``ntrader.runs.make_args``) and scans
Ray's plugin as before; ``--info``, ``--hydra-help`` and ``NTRADER_HYDRA_PLUGINS=all`` scan all.

Mode probe: before a run Hydra composes the whole config once only to read ``hydra.mode``
(``Hydra.get_mode``), then again to run it (~0.1 s). No ntrader config sets ``hydra.mode``
(tests/test_startup.py checks), so ``skip_mode_probe`` answers "not set" without composing,
unless an argument names ``hydra.mode`` or another config dir / config name.
"""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Sequence
from typing import Any

PLUGINS_ENV = "NTRADER_HYDRA_PLUGINS"
LAUNCHER_PLUGINS = {
    "ray": "hydra_plugins.hydra_ray_launcher",
    "submitit": "hydra_plugins.hydra_submitit_launcher",
    "joblib": "hydra_plugins.hydra_joblib_launcher",
}
_LAUNCHER_OVERRIDE = re.compile(r"[+~]*hydra/launcher=(.*)")
_LISTING = ("--info", "--hydra-help", "--shell-completion", "-sc", "-i")
_OTHER_CONFIG = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def prepare_hydra(argv: Sequence[str] | None = None) -> None:
    """Both trims, for the arguments Hydra is about to parse (default ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    skip_unasked_plugins(args)
    skip_mode_probe(args)


def skip_unasked_plugins(args: Sequence[str]) -> list[str]:
    """Hide the launcher plugins no ``hydra/launcher=`` override names; the hidden packages."""
    if os.environ.get(PLUGINS_ENV, "").strip().lower() == "all" or any(
        a.startswith(_LISTING) for a in args
    ):
        return []
    asked = " ".join(m.group(1) for a in args if (m := _LAUNCHER_OVERRIDE.fullmatch(a)))
    hidden = []
    for key, name in LAUNCHER_PLUGINS.items():
        if key in asked or name in sys.modules:
            continue
        stub = types.ModuleType(name, "skipped by ntrader.runs.task (no override asks)")
        stub.__path__ = []
        sys.modules[name] = stub
        hidden.append(name)
    return hidden


def skip_mode_probe(args: Sequence[str]) -> bool:
    """Let the next ``Hydra.get_mode`` answer None (``hydra.mode`` unset) without composing the
    config, when nothing in ``args`` can set it; True when it will. One-shot: the call after it
    probes as Hydra does."""
    global _SKIP_NEXT_PROBE
    from hydra._internal.hydra import Hydra

    if Hydra.get_mode is not _get_mode:
        _ORIGINAL.append(Hydra.get_mode)
        Hydra.get_mode = _get_mode  # type: ignore[method-assign]
    _SKIP_NEXT_PROBE = not any("hydra.mode" in a or a.startswith(_OTHER_CONFIG) for a in args)
    return _SKIP_NEXT_PROBE


_SKIP_NEXT_PROBE = False
_ORIGINAL: list[Any] = []


def _get_mode(self: Any, config_name: str | None, overrides: list[str]) -> Any:
    global _SKIP_NEXT_PROBE
    if _SKIP_NEXT_PROBE:
        _SKIP_NEXT_PROBE = False
        return None  # what Hydra's own probe returns for every config in conf/
    return _ORIGINAL[0](self, config_name, overrides)

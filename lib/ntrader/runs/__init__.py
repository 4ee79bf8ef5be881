"""A script run: its folder, logging, ``summary.json``, exit code, and where run folders live.

Script-side: Hydra (and OmegaConf) are used here and in the sweep callback only. Imported eagerly
(the config resolvers must exist before Hydra composes a config).

May import: the core modules (``ntrader.errors``, ``ntrader.symbols``, ``ntrader.secrets``,
``ntrader.tabular``, ``ntrader.sessions``); nothing of the catalog or above.

``make <target>`` runs go through ``ntrader.runs.make_args`` (imported by ``entry`` when a make
target is set, not here: it also runs as ``python -m ntrader.runs.make_args``).
"""

from ntrader.runs import store
from ntrader.runs.folders import register_resolvers
from ntrader.runs.logs import setup_logging, stderr_is_tty
from ntrader.runs.provenance import code
from ntrader.runs.task import (
    RunContext,
    entry,
    exit_now,
    run_task,
    set_multirun_exit_code,
    write_json_atomic,
)

register_resolvers()

__all__ = [
    "RunContext",
    "code",
    "entry",
    "exit_now",
    "register_resolvers",
    "run_task",
    "set_multirun_exit_code",
    "setup_logging",
    "stderr_is_tty",
    "store",
    "write_json_atomic",
]

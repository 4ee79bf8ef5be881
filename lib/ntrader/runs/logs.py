"""Logging of a run: the console (a terminal, or cron/CI lines with the run id) and the run
folder's ``<script>.log``; every line, continuation lines included, carries the run id and has
its secrets redacted."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from ntrader.secrets import redact


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _tagged(prefix: str) -> Callable[[Any], str]:
    """A loguru format whose every line, continuation lines included, carries the run id."""

    def fmt(record: Any) -> str:
        rid = record["extra"].get("run_id", "-")
        message = redact(record["message"])
        record["extra"]["lines"] = message.replace("\n", f"\n    [{rid}] ")
        return prefix + "{extra[lines]}\n{exception}"

    return fmt


def _above_bars(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr, end="")


def setup_logging(run_dir: Path, script: str, run_id: str, level: str = "INFO") -> int:
    """Console + ``<run_dir>/<script>.log``; returns the id of the file sink."""
    logger.remove()
    logger.configure(extra={"run_id": run_id})
    tty = stderr_is_tty()
    if tty:
        console: Any = _tagged("<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> ")
    else:  # cron / CI: concurrent runs share one log stream
        console = _tagged("{time:YYYY-MM-DD HH:mm:ss} {level: <7} [{extra[run_id]}] ")
    # on a terminal through tqdm.write: a line goes above a progress bar, never into it
    sink: Any = _above_bars if tty else sys.stderr
    logger.add(sink, level=level.upper(), format=console, colorize=tty)
    return logger.add(
        run_dir / f"{script}.log",
        level="DEBUG",
        format=_tagged("{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} [{extra[run_id]}] {name}: "),
    )

"""Headless Debian chromium for page tests (``/usr/bin/chromium``, installed by ``.ci/run``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def chromium(page: Path, profile: Path, *flags: str, fragment: str = "") -> str:
    """Run headless chromium on ``page`` (at URL ``fragment``, e.g. ``#finding-0``); its whole
    process group is ended afterwards."""
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1200,2000",
            "--virtual-time-budget=5000",
            *flags,
            page.as_uri() + fragment,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # helpers (crashpad, zygote) left behind
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}"
    return out

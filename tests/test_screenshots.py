"""The README's pictures of the report and sweep pages come from ``docs/screenshots.py`` (``make
screenshots``), not from a hand: the README embeds exactly what the script writes, and (slow) the
script, run again, writes them from a fresh catalog and sweep."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from .conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("screenshots", REPO / "docs" / "screenshots.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pixels(path: Path) -> np.ndarray:
    return (np.asarray(mpimg.imread(path))[..., :3] * 255).round().astype(int)


def test_the_readme_embeds_the_pictures_the_script_writes():
    readme = (REPO / "README.md").read_text()
    embedded = re.findall(r"!\[[^\]]*\]\((docs/images/[^)]+)\)", readme)
    assert sorted(embedded) == sorted(f"docs/images/{n}" for n in _script().PICTURES)
    for rel in embedded:
        assert _pixels(REPO / rel).shape[1] == 1200, rel  # chromium's window, not a crop
    assert "make screenshots" in readme


@pytest.mark.slow
def test_the_script_makes_both_pictures_from_scratch(tmp_path):
    p = subprocess.run(
        [sys.executable, "docs/screenshots.py", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    report, sweep = (_pixels(tmp_path / n) for n in _script().PICTURES)
    red = np.all(np.abs(report - [0xD6, 0x27, 0x28]) <= 3, axis=-1)  # MSFT's missing sessions
    orange = np.all(np.abs(report - [0xFF, 0x9F, 0x1C]) <= 3, axis=-1)  # NVDA's partial one
    assert red.sum() > 100 and orange.sum() > 30
    assert (sweep < 128).any(axis=-1).sum() > 1000  # drawn, not a white page

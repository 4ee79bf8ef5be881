"""README "Use from Python" runs as written, and the library calls it shows agree with the
scripts: the same catalog read by ``Catalog.read_frame`` and by ``make check``, the same backtest
run by ``run_backtest`` and by ``scripts/backtest.py``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ntrader.catalog import Catalog
from ntrader.sessions import expected_bar_closes, sessions_between

from .conftest import REPO


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    blocks = readme_python_blocks()
    assert blocks, "README 'Use from Python' has no python block"
    cwd = os.getcwd()
    os.chdir(REPO)  # the block uses repository-relative paths, as a user at the root would
    try:
        namespace: dict = {"__name__": "__readme__"}
        for code in blocks:
            exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


def test_readme_reads_the_bars_it_imported(readme_run: dict) -> None:
    bars: pd.DataFrame = readme_run["bars"]
    catalog: Catalog = readme_run["catalog"]
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert str(bars.index.tz) == "America/New_York" and bars.index.name == "ts_event"
    sessions = sessions_between(
        "XNYS", pd.Timestamp("2024-05-29").date(), pd.Timestamp("2024-05-31").date()
    )
    expected = expected_bar_closes(sessions, 60_000_000_000)
    assert np.array_equal(bars.index.tz_convert("UTC").asi8, expected)  # every bar, no other
    sample = pd.read_csv(REPO / "data" / "samples" / "AAPL-1min-sample.csv")
    inside = sample[sample.timestamp.str[:10] <= "2024-05-31"]
    assert np.array_equal(bars.close.to_numpy(), inside.close.to_numpy())  # labelled by the close
    avail = catalog.availability_frame()
    assert avail.loc[0, "rows"] == len(sample)
    assert avail.loc[0, "last"] == pd.Timestamp("2024-06-04 16:00", tz="America/New_York")


def test_readme_backtest_equals_the_script(readme_run: dict, run_script) -> None:
    result = readme_run["result"]
    catalog: Catalog = readme_run["catalog"]
    assert result.files == {}  # no out_dir: nothing written
    assert result.summary["fills"] == len(result.fills) > 0
    assert result.equity.index.tz is not None and result.equity.iloc[0] == 100_000.0
    r = run_script(
        "backtest",
        f"catalog.path={catalog.url}",
        "symbol=AAPL",
        "dates.start=2024-05-29",
        "dates.end=2024-05-31",
        "strategy=ema_cross_long_only",
        "reports.tearsheet=false",
        "ibkr.auto_fetch=false",
    )
    assert r.code == 0, r.stderr[-3000:]
    summary = r.summary()
    script = summary["result"]
    for key in ("bars", "orders", "fills", "positions", "pnl", "commissions", "max_drawdown_pct"):
        assert script[key] == result.summary[key], key
    fills = pd.read_csv(Path(summary["run_dir"]) / "fills.csv")
    assert fills.last_px.tolist() == [float(p) for p in result.fills.last_px]

"""`make import` accepts what real files look like and refuses what is wrong (issue 12 §3).

End to end: real `make import …` subprocesses (the venv stamp held old with `-o`, so no `uv sync`
runs) into a real catalog on disk; the exit code is the script's own (`scripts/import_csv.py
exited with code N` and `summary.json`), and every command an error suggests is run as printed
(through bash) and must import the file.

- a pandas export (`df.to_csv()` of a DataFrame on a DatetimeIndex: blank first header) is read
  with its index as the timestamp column;
- the rows' spacing (modal step between rows) must match BAR: a daily file without BAR=, 5-minute
  rows as 1-minute bars, 1-minute rows as 5-minute or daily bars exit 2 naming the spacing and a
  complete `make import … BAR=…` command (CSV, SYMBOL, MODE, CATALOG when given, ARGS).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from ntrader.catalog.catalog import Catalog
from ntrader.errors import INPUT_ERROR
from ntrader.importing import CsvSpec, import_csv
from ntrader.runs.make_args import VARIABLES

from .conftest import REPO, tree_snapshot

MAKE = ["make", "-s", "-o", ".venv/.synced"]
NY = "America/New_York"
DAY = "AAPL.NASDAQ-1-DAY-LAST-EXTERNAL"
MINUTE = "AAPL.NASDAQ-1-MINUTE-LAST-EXTERNAL"
FIVE = "AAPL.NASDAQ-5-MINUTE-LAST-EXTERNAL"


@dataclass
class Run:
    rc: int  # make's own exit code (2 for any failed recipe)
    code: int  # the script's exit code
    stdout: str
    stderr: str
    summary: dict

    @property
    def hint(self) -> str:
        """The `what to do:` line the user sees; summary.json records the same text."""
        lines = re.findall(r"what to do: (.*)$", self.stderr, re.M)
        assert lines, self.stderr[-3000:]
        assert lines[-1] == self.summary["error"]["hint"]
        return lines[-1]

    @property
    def command(self) -> str:
        """The `make import …` command of the hint, as printed."""
        hint = self.hint
        assert "make import " in hint, hint
        return hint[hint.index("make import ") :]


def user_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's shell: no make flags, public Make variables or ntrader settings of this process;
    run folders under ``tmp_path/runs``."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "NAUTILUS_PATH"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and k not in VARIABLES and not k.startswith("NTRADER_")
    }
    return {**env, "NTRADER_RUNS": str(tmp_path / "runs"), **extra}


def _finish(p: subprocess.CompletedProcess[str]) -> Run:
    m = re.search(r"scripts/import_csv\.py exited with code (\d+)", p.stderr)
    code = int(m.group(1)) if m else p.returncode
    folder = re.findall(r"run folder: (.+)$", p.stderr, re.M)
    summary = {}
    if folder:
        summary = json.loads((Path(folder[-1]) / "summary.json").read_text())
        assert summary["exit_code"] == code, (summary, p.stderr[-2000:])
    return Run(p.returncode, code, p.stdout, p.stderr, summary)


def make_import(env: dict[str, str], **variables: str) -> Run:
    """``make import VAR=value …`` in the repo, as a user types it."""
    args = [*MAKE, "import", *(f"{k}={v}" for k, v in variables.items())]
    p = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return _finish(p)


def run_printed(command: str, env: dict[str, str]) -> Run:
    """Paste ``command`` into bash (only make's own `-s -o <stamp>` flags added)."""
    assert command.startswith("make import ")
    line = f"{shlex.join(MAKE)} {command.removeprefix('make ')}"
    p = subprocess.run(
        ["bash", "-c", line], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    return _finish(p)


def bar_dirs(root: Path) -> list[str]:
    folder = root / "data" / "bar"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def events(root: Path, bar_type: str) -> list[int]:
    return [b.ts_event for b in ParquetDataCatalog(str(root)).bars([bar_type])]


def midnight_after(day: pd.Timestamp) -> int:
    """ts_event of a daily bar: the next local midnight in New York (UTC ns)."""
    return (pd.Timestamp(day.date(), tz=NY) + pd.Timedelta(days=1)).value


def ohlcv(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(185 + np.cumsum(rng.normal(0, 0.5, n)), 2)
    open_ = np.round(np.r_[close[0], close[:-1]], 2)
    return pd.DataFrame(
        {
            "Open": open_,
            "High": np.round(np.maximum(open_, close) + 0.25, 2),
            "Low": np.round(np.minimum(open_, close) - 0.25, 2),
            "Close": close,
            "Volume": rng.integers(1_000_000, 9_000_000, n),
        }
    )


def pandas_daily(path: Path, n: int = 30, start: str = "2024-01-02") -> pd.DatetimeIndex:
    """`df.to_csv()` of daily bars on a DatetimeIndex: `,Open,…` and `2024-01-02,185.1,…`."""
    index = pd.bdate_range(start, periods=n)
    df = ohlcv(n).set_index(index)
    df.to_csv(path)
    return index


def minute_rows(sessions: list[str], every: int = 1, drop: tuple[int, ...] = ()) -> pd.Series:
    """Open times of RTH bars ``every`` minutes long on each session (New York, aware)."""
    stamps = [
        t
        for day in sessions
        for t in pd.date_range(f"{day} 09:30", f"{day} 15:59", freq=f"{every}min", tz=NY)
    ]
    return pd.Series([t for i, t in enumerate(stamps) if i not in set(drop)])


def vendor_minute(path: Path, opens: pd.Series) -> None:
    """A vendor export with a `Datetime` column of naive New York times."""
    df = ohlcv(len(opens))
    df.insert(0, "Datetime", opens.dt.strftime("%Y-%m-%d %H:%M:%S"))
    df.to_csv(path, index=False)


# ------------------------------------------------------------------------------------------
# a pandas export: the unnamed index column is the timestamp


def test_pandas_daily_export_imports_as_daily_bars(tmp_path: Path) -> None:
    csv, root = tmp_path / "aapl_daily.csv", tmp_path / "catalog"
    days = pandas_daily(csv)
    assert csv.read_text().splitlines()[:2][0] == ",Open,High,Low,Close,Volume"
    assert re.fullmatch(r"2024-01-02,[\d.]+,.*", csv.read_text().splitlines()[1])
    r = make_import(
        user_env(tmp_path), CSV=str(csv), SYMBOL="AAPL", BAR="1-DAY-LAST", CATALOG=str(root)
    )
    assert (r.rc, r.code) == (0, 0), r.stderr[-3000:]
    assert "rows read 30 · added 30" in r.stdout
    assert "timestamp=(unnamed column 1)" in r.stderr
    assert bar_dirs(root) == [DAY]
    assert events(root, DAY) == [midnight_after(d) for d in days]
    closes = [b.close.as_double() for b in ParquetDataCatalog(str(root)).bars([DAY])]
    assert closes == pd.read_csv(csv)["Close"].tolist()
    assert r.summary["counts"]["rows_added"] == 30


def test_pandas_minute_export_with_a_few_gaps_imports_as_minute_bars(tmp_path: Path) -> None:
    """A tz-aware 1-minute export over three sessions with missing minutes and a missing half
    hour: the overnight jumps and the gaps do not make it anything but 1-minute bars."""
    csv, root = tmp_path / "aapl_1min.csv", tmp_path / "catalog"
    drop = (3, 17, 18, 101, 389 + 7, *range(500, 530))
    opens = minute_rows(["2024-01-02", "2024-01-03", "2024-01-04"], drop=drop)
    df = ohlcv(len(opens)).set_index(pd.DatetimeIndex(opens))
    df.to_csv(csv)
    assert csv.read_text().splitlines()[1].startswith("2024-01-02 09:30:00-05:00,")
    r = make_import(user_env(tmp_path), CSV=str(csv), SYMBOL="AAPL", CATALOG=str(root))
    assert (r.rc, r.code) == (0, 0), r.stderr[-3000:]
    assert bar_dirs(root) == [MINUTE]
    assert events(root, MINUTE) == [(t + pd.Timedelta(minutes=1)).value for t in opens]
    assert len(opens) == 3 * 390 - len(drop)


# ------------------------------------------------------------------------------------------
# spacing against BAR


def test_pandas_daily_export_without_bar_is_refused_and_the_printed_command_works(
    tmp_path: Path,
) -> None:
    csv, root = tmp_path / "aapl_daily.csv", tmp_path / "catalog"
    days = pandas_daily(csv)
    env = user_env(tmp_path)
    r = make_import(env, CSV=str(csv), SYMBOL="AAPL", CATALOG=str(root))
    assert (r.rc, r.code) == (2, INPUT_ERROR)
    assert "rows are 1 day apart but BAR is 1-MINUTE-LAST; use BAR=1-DAY-LAST" in r.stderr
    assert r.summary["error"]["kind"] == "input error"
    assert r.command == (f"make import CSV={csv} SYMBOL=AAPL.NASDAQ BAR=1-DAY-LAST CATALOG={root}")
    assert bar_dirs(root) == []  # nothing was stored as 1-minute bars
    fixed = run_printed(r.command, env)
    assert (fixed.rc, fixed.code) == (0, 0), fixed.stderr[-3000:]
    assert bar_dirs(root) == [DAY]
    assert events(root, DAY) == [midnight_after(d) for d in days]


def test_daily_vendor_file_without_bar_names_no_catalog_when_none_was_given(
    tmp_path: Path,
) -> None:
    """A Yahoo-style daily file (a `Date` column) used to land as 1-minute bars stamped 00:01.
    With the default catalog ($NAUTILUS_PATH/catalog) the command carries no CATALOG=."""
    csv = tmp_path / "spy.csv"
    days = pd.bdate_range("2024-03-01", periods=12)
    df = ohlcv(len(days))
    df.insert(0, "Date", days.strftime("%Y-%m-%d"))
    df.insert(5, "Adj Close", df["Close"] - 0.5)
    df.to_csv(csv, index=False)
    nautilus = tmp_path / "nautilus"
    root = nautilus / "catalog"
    env = user_env(tmp_path, NAUTILUS_PATH=str(nautilus))
    r = make_import(env, CSV=str(csv), SYMBOL="AAPL")
    assert (r.rc, r.code) == (2, INPUT_ERROR), r.stderr[-3000:]
    assert "rows are 1 day apart but BAR is 1-MINUTE-LAST; use BAR=1-DAY-LAST" in r.stderr
    assert r.command == f"make import CSV={csv} SYMBOL=AAPL.NASDAQ BAR=1-DAY-LAST"
    assert MINUTE not in bar_dirs(root)
    fixed = run_printed(r.command, env)
    assert (fixed.rc, fixed.code) == (0, 0), fixed.stderr[-3000:]
    assert bar_dirs(root) == [DAY]
    assert events(root, DAY) == [midnight_after(d) for d in days]


def test_five_minute_rows_are_not_one_minute_bars(tmp_path: Path) -> None:
    csv, root = tmp_path / "aapl_5min.csv", tmp_path / "catalog"
    opens = minute_rows(["2024-01-02", "2024-01-03"], every=5)
    vendor_minute(csv, opens)
    env = user_env(tmp_path)
    r = make_import(env, CSV=str(csv), SYMBOL="AAPL", CATALOG=str(root))
    assert (r.rc, r.code) == (2, INPUT_ERROR)
    assert "rows are 5 minutes apart but BAR is 1-MINUTE-LAST; use BAR=5-MINUTE-LAST" in r.stderr
    assert r.command == f"make import CSV={csv} SYMBOL=AAPL.NASDAQ BAR=5-MINUTE-LAST CATALOG={root}"
    assert bar_dirs(root) == []
    fixed = run_printed(r.command, env)
    assert (fixed.rc, fixed.code) == (0, 0), fixed.stderr[-3000:]
    assert bar_dirs(root) == [FIVE]
    assert events(root, FIVE) == [(t + pd.Timedelta(minutes=5)).value for t in opens]


@pytest.mark.parametrize("bar", ["5-MINUTE-LAST", "1-DAY-LAST"])
def test_one_minute_rows_are_not_coarser_bars(tmp_path: Path, bar: str) -> None:
    """Finer than BAR: as 5-minute bars they closed 4 minutes late; as daily bars every
    session's rows collided on one timestamp (a list of "duplicate timestamp" lines before)."""
    csv, root = tmp_path / "aapl_1min.csv", tmp_path / "catalog"
    opens = minute_rows(["2024-01-02", "2024-01-03"], drop=(10, 11, 12))
    vendor_minute(csv, opens)
    env = user_env(tmp_path)
    r = make_import(env, CSV=str(csv), SYMBOL="AAPL", BAR=bar, CATALOG=str(root), MODE="merge")
    assert (r.rc, r.code) == (2, INPUT_ERROR), r.stderr[-3000:]
    assert f"rows are 1 minute apart but BAR is {bar}; use BAR=1-MINUTE-LAST" in r.stderr
    assert "duplicate timestamp" not in r.stderr
    assert r.command == (
        f"make import CSV={csv} SYMBOL=AAPL.NASDAQ BAR=1-MINUTE-LAST MODE=merge CATALOG={root}"
    )
    assert bar_dirs(root) == []
    fixed = run_printed(r.command, env)
    assert (fixed.rc, fixed.code) == (0, 0), fixed.stderr[-3000:]
    assert bar_dirs(root) == [MINUTE]
    assert events(root, MINUTE) == [(t + pd.Timedelta(minutes=1)).value for t in opens]


def test_two_rows_cannot_be_judged_three_can(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    env = user_env(tmp_path)
    two, three = tmp_path / "two.csv", tmp_path / "three.csv"
    pandas_daily(two, n=2)
    pandas_daily(three, n=3, start="2024-02-01")
    r = make_import(env, CSV=str(two), SYMBOL="AAPL", CATALOG=str(root))
    assert (r.rc, r.code) == (0, 0), r.stderr[-3000:]
    assert len(events(root, MINUTE)) == 2  # too few rows to tell: imported as asked
    before = tree_snapshot(root)
    r = make_import(env, CSV=str(three), SYMBOL="AAPL", CATALOG=str(root))
    assert (r.rc, r.code) == (2, INPUT_ERROR)
    assert "rows are 1 day apart but BAR is 1-MINUTE-LAST; use BAR=1-DAY-LAST" in r.stderr
    assert tree_snapshot(root) == before


def test_coarser_rows_pass_only_as_gaps_of_a_series_the_catalog_holds(tmp_path: Path) -> None:
    """Rows 2 minutes apart are 2-minute bars in an empty catalog; over a session the catalog
    already holds at 1 minute they are that series with gaps (a patch, MODE=merge)."""
    root = tmp_path / "catalog"
    env = user_env(tmp_path)
    every_other = minute_rows(["2024-01-02"], every=2)
    patch = tmp_path / "patch.csv"
    vendor_minute(patch, every_other)
    r = make_import(env, CSV=str(patch), SYMBOL="AAPL", CATALOG=str(root), MODE="merge")
    assert (r.rc, r.code) == (2, INPUT_ERROR)
    assert "rows are 2 minutes apart but BAR is 1-MINUTE-LAST; use BAR=2-MINUTE-LAST" in r.stderr
    assert bar_dirs(root) == []
    full = tmp_path / "full.csv"
    session = minute_rows(["2024-01-02"])
    vendor_minute(full, session)
    assert make_import(env, CSV=str(full), SYMBOL="AAPL", CATALOG=str(root)).code == 0
    r = make_import(env, CSV=str(patch), SYMBOL="AAPL", CATALOG=str(root), MODE="merge")
    assert (r.rc, r.code) == (0, 0), r.stderr[-3000:]
    assert "read as 1-MINUTE-LAST bars with gaps" in r.stderr
    assert bar_dirs(root) == [MINUTE]
    assert events(root, MINUTE) == [(t + pd.Timedelta(minutes=1)).value for t in session]
    closes = {b.ts_event: b.close.as_double() for b in ParquetDataCatalog(str(root)).bars([MINUTE])}
    patched = pd.read_csv(patch)
    assert [closes[(t + pd.Timedelta(minutes=1)).value] for t in every_other] == patched[
        "Close"
    ].tolist()  # the file won on equal timestamps


def test_the_printed_command_survives_hostile_paths_and_repeats_mode_and_args(
    tmp_path: Path,
) -> None:
    """Quotes, `$`, blanks and `;` in the paths; a `;`-delimited file read with csv.delimiter
    and csv.tz: the printed command is pasteable as is and repeats MODE and ARGS."""
    folder = tmp_path / "O'Neil data"
    folder.mkdir()
    csv = folder / "daily $HOME; `id`.csv"
    root = tmp_path / "cat $(touch pwned) x"
    days = pd.bdate_range("2024-05-01", periods=8)
    df = ohlcv(len(days))
    df.insert(0, "Day", days.strftime("%d.%m.%Y"))
    df = df.rename(columns={"Close": "Close Price"})
    df.to_csv(csv, index=False, sep=";")
    env = user_env(tmp_path)
    r = make_import(
        env,
        CSV=str(csv),
        SYMBOL="AAPL",
        CATALOG=str(root),
        MODE="overwrite",
        ARGS="csv.tz=America/Chicago 'csv.columns.close=Close Price' csv.timestamp_format=%d.%m.%Y",
    )
    assert (r.rc, r.code) == (2, INPUT_ERROR), r.stderr[-3000:]
    assert "rows are 1 day apart but BAR is 1-MINUTE-LAST; use BAR=1-DAY-LAST" in r.stderr
    command = r.command
    assert command.startswith(
        f"make import CSV={shlex.quote(str(csv))} SYMBOL=AAPL.NASDAQ BAR=1-DAY-LAST "
        f"MODE=overwrite CATALOG={shlex.quote(str(root))} ARGS="
    ), command
    for setting in ("csv.tz=America/Chicago", "csv.columns.close=Close Price", "%d.%m.%Y"):
        assert setting in command
    fixed = run_printed(command, env)
    assert (fixed.rc, fixed.code) == (0, 0), fixed.stderr[-3000:]
    assert bar_dirs(root) == [DAY]
    chicago = [
        (pd.Timestamp(d.date(), tz="America/Chicago") + pd.Timedelta(days=1)).value for d in days
    ]
    assert events(root, DAY) == chicago
    assert not list(tmp_path.rglob("pwned")) and not (REPO / "pwned").exists()


# ------------------------------------------------------------------------------------------
# naming an unnamed column: the printed command works


@pytest.mark.parametrize("header", ["", "Unnamed: 0"])
def test_an_unnamed_epoch_column_is_named_by_the_printed_command(
    tmp_path: Path, header: str
) -> None:
    """Integers in a column without a header may be row numbers: not taken on a guess, but the
    hint names the column with csv.columns.timestamp — and that command imports the file."""
    csv, root = tmp_path / "epoch.csv", tmp_path / "catalog"
    base = 1_704_205_800  # 2024-01-02 14:30 UTC
    opens = [base + 60 * k for k in range(20)]
    df = ohlcv(len(opens))
    df.insert(0, header, opens)
    df.to_csv(csv, index=False)
    env = user_env(tmp_path)
    r = make_import(env, CSV=str(csv), SYMBOL="AAPL", CATALOG=str(root), ARGS="csv.epoch_unit=s")
    assert (r.rc, r.code) == (2, INPUT_ERROR), r.stderr[-3000:]
    assert "missing required column(s): timestamp" in r.stderr
    assert "Column 1 has no header" in r.stderr
    named = "csv.columns.timestamp=''" if header == "" else "'csv.columns.timestamp=Unnamed: 0'"
    assert r.hint == (
        f"if column 1 holds the bar timestamps, name it: make import CSV={csv} "
        f'SYMBOL=AAPL.NASDAQ CATALOG={root} ARGS="csv.epoch_unit=s {named}"'
    )
    assert bar_dirs(root) == []
    fixed = run_printed(r.command, env)
    assert (fixed.rc, fixed.code) == (0, 0), fixed.stderr[-3000:]
    assert events(root, MINUTE) == [(t + 60) * 10**9 for t in opens]


def test_an_unnamed_second_column_of_dates_is_named_by_the_printed_command(tmp_path: Path) -> None:
    """Only a FIRST unnamed column is a pandas index; elsewhere the hint names the column."""
    csv, root = tmp_path / "ticker_first.csv", tmp_path / "catalog"
    days = pd.bdate_range("2024-01-02", periods=6)
    df = ohlcv(len(days))
    df.insert(0, "", days.strftime("%Y-%m-%d"))
    df.insert(0, "Ticker", "AAPL")
    df.to_csv(csv, index=False)
    assert csv.read_text().startswith("Ticker,,Open,")
    env = user_env(tmp_path)
    r = make_import(env, CSV=str(csv), SYMBOL="AAPL", BAR="1-DAY-LAST", CATALOG=str(root))
    assert (r.rc, r.code) == (2, INPUT_ERROR), r.stderr[-3000:]
    assert "Column 2 has no header ('') and holds dates or date-times" in r.stderr
    assert r.hint == (
        f"if column 2 holds the bar timestamps, name it: make import CSV={csv} "
        f"SYMBOL=AAPL.NASDAQ BAR=1-DAY-LAST CATALOG={root} ARGS=\"csv.columns.timestamp=''\""
    )
    fixed = run_printed(r.command, env)
    assert (fixed.rc, fixed.code) == (0, 0), fixed.stderr[-3000:]
    assert bar_dirs(root) == [DAY]
    assert events(root, DAY) == [midnight_after(d) for d in days]


def test_python_api_refuses_daily_rows_as_minute_bars_when_asked(tmp_path: Path) -> None:
    from ntrader.importing.importer import SpacingMismatch

    csv = tmp_path / "daily.csv"
    pandas_daily(csv, n=5)
    catalog = Catalog(tmp_path / "catalog")
    with pytest.raises(SpacingMismatch) as info:
        import_csv(catalog, csv, "AAPL", spec=CsvSpec())
    assert info.value.suggested == "1-DAY-LAST"
    assert info.value.exit_code == INPUT_ERROR
    assert "rows are 1 day apart but BAR is 1-MINUTE-LAST" in info.value.message
    assert bar_dirs(tmp_path / "catalog") == []
